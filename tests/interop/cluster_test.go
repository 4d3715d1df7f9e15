package interop

// A mixed cluster: our node and the Go original's node (v1.2.0) as peers of
// one zone, both started from the same discovery.toml layout. Writes on either
// node must reach the other; each node must recover the registry from the
// other after a restart.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bilibili/discovery/naming"
)

const (
	mixedApp    = "demo.mixed"
	conflictApp = "demo.conflict"
	manyApp     = "demo.many"
	sdkMixedApp = "demo.sdk.mixed"
)

func TestMixedCluster(t *testing.T) {
	mixedCluster(t, "")
}

// The same checks with [auth] on our node as a mixed cluster runs it: our nodes would send the
// peer token, and the Go node, which cannot, is admitted by its address (peerAddrs). The Go
// original ignores the section.
func TestMixedClusterPeerAddrs(t *testing.T) {
	mixedCluster(t, "[auth]\npeerToken = \"interop-secret\"\npeerAddrs = [\"127.0.0.1/32\"]\n")
}

func mixedCluster(t *testing.T, extra string) {
	t.Parallel()
	oursAddr, goAddr := freeAddr(t), freeAddr(t)
	peers := []string{oursAddr, goAddr}
	ours := startOurs(t, "ours", nodeConfig{Addr: oursAddr, Host: "rs-node", Nodes: peers, Extra: extra})
	goNode := startGo(t, "go", nodeConfig{Addr: goAddr, Host: "go-node", Nodes: peers, Extra: extra})
	both := []*node{ours, goNode}

	// What every node should hold, by hostname: the addrs each instance was registered with.
	want := map[string][]string{}

	check(t, "infra.discovery_lists_both_nodes_on_both", func(t *testing.T) {
		for _, n := range both {
			eventually(t, n.name+" knows both nodes", func() (bool, string) {
				ins, r, err := fetchApp(n.addr(), "infra.discovery")
				if err != nil {
					return false, err.Error()
				}
				_, a := ins["rs-node"]
				_, b := ins["go-node"]
				return a && b, r.String()
			})
		}
	})

	ok := check(t, "register_on_ours_appears_on_go", func(t *testing.T) {
		addrs := []string{"grpc://127.0.0.1:9201", "http://127.0.0.1:8201"}
		registerOn(t, ours, "h-ours", addrs)
		want["h-ours"] = addrs
		expectSame(t, both, want)
	})
	if !ok {
		return
	}

	check(t, "register_on_go_appears_on_ours", func(t *testing.T) {
		// The Go node forwards addrs joined with commas; ours must split them.
		addrs := []string{"grpc://127.0.0.1:9202", "http://127.0.0.1:8202"}
		registerOn(t, goNode, "h-go", addrs)
		want["h-go"] = addrs
		expectSame(t, both, want)
	})

	check(t, "renew_on_either_reaches_both", func(t *testing.T) {
		for _, via := range both {
			for host := range want {
				before := renewTimestamps(t, both, host)
				r, err := postForm(via.addr(), "renew", instanceParams(mixedApp, host))
				if err != nil || r.Code != 0 {
					t.Errorf("renew %s on %s: err %v answer %s", host, via.name, err, r)
					continue
				}
				for _, n := range both {
					eventually(t, fmt.Sprintf("renew of %s via %s seen on %s", host, via.name, n.name), func() (bool, string) {
						ins, r, err := fetchAllApp(n.addr(), mixedApp)
						if err != nil {
							return false, err.Error()
						}
						return ins[host].RenewTimestamp > before[n.name], r.String()
					})
				}
			}
		}
	})

	// A node marks a peer up after a successful call to it (the Go original:
	// after a forwarded renew); by now both have forwarded renews.
	check(t, "nodes_lists_both_up_on_both", func(t *testing.T) {
		for _, n := range both {
			eventually(t, n.name+" reports both nodes up", func() (bool, string) {
				a, raw := nodeStatus(n, oursAddr)
				b, _ := nodeStatus(n, goAddr)
				return a == 0 && b == 0, raw
			})
		}
	})

	check(t, "set_on_either_reaches_both", func(t *testing.T) {
		for _, via := range both {
			for _, status := range []string{"2", "1"} {
				md := fmt.Sprintf(`{"tags":"a,b","weight":"%s"}`, map[string]string{"2": "0", "1": "10"}[status])
				r, err := postForm(via.addr(), "set", url.Values{
					"region": {region}, "zone": {zone}, "env": {deployEnv}, "appid": {mixedApp},
					"hostname": {"h-ours", "h-go"}, "status": {status, status}, "metadata": {md, md},
				})
				if err != nil || r.Code != 0 {
					t.Fatalf("set status=%s on %s: %v %s", status, via.name, err, r)
				}
				for _, n := range both {
					eventually(t, fmt.Sprintf("set status=%s via %s seen on %s", status, via.name, n.name), func() (bool, string) {
						ins, r, err := fetchApp(n.addr(), mixedApp)
						if err != nil {
							return false, err.Error()
						}
						for _, h := range []string{"h-ours", "h-go"} {
							if strconv.Itoa(ins[h].Status) != status || ins[h].Metadata["weight"] != map[string]string{"2": "0", "1": "10"}[status] {
								return false, r.String()
							}
						}
						return true, ""
					})
				}
			}
		}
	})

	check(t, "renew_answered_404_makes_the_sender_register", func(t *testing.T) {
		// An instance only one node knows (registered there as by a peer, so
		// not forwarded): a client renew there is forwarded, the other node
		// answers -404 and the sender must then send it the full register.
		for i, pair := range [][2]*node{{goNode, ours}, {ours, goNode}} {
			holder, other := pair[0], pair[1]
			host := fmt.Sprintf("h-only-on-%s", holder.name)
			addrs := []string{fmt.Sprintf("grpc://127.0.0.1:94%02d", i)}
			peerRegister(t, holder, conflictApp, host, addrs, time.Now().UnixNano())
			if ins, _, _ := fetchApp(other.addr(), conflictApp); len(ins[host].Addrs) != 0 {
				t.Fatalf("%s already has %s before any renew", other.name, host)
			}
			if r, err := postForm(holder.addr(), "renew", instanceParams(conflictApp, host)); err != nil || r.Code != 0 {
				t.Fatalf("renew %s on %s: %v %s", host, holder.name, err, r)
			}
			eventually(t, fmt.Sprintf("%s receives %s after its -404", other.name, host), func() (bool, string) {
				ins, r, err := fetchApp(other.addr(), conflictApp)
				if err != nil {
					return false, err.Error()
				}
				return reflect.DeepEqual(ins[host].Addrs, addrs), r.String()
			})
		}
	})

	check(t, "renew_answered_409_makes_the_sender_adopt_the_newer_instance", func(t *testing.T) {
		// Both nodes hold the instance, with different addrs; the newer
		// dirty_timestamp wins. A client renew on the node with the older copy
		// is forwarded, answered -409 with the newer instance, and adopted.
		for i, pair := range [][2]*node{{ours, goNode}, {goNode, ours}} {
			stale, fresh := pair[0], pair[1]
			host := fmt.Sprintf("h-stale-on-%s", stale.name)
			older := []string{fmt.Sprintf("grpc://127.0.0.1:95%02d", i)}
			newer := []string{fmt.Sprintf("grpc://127.0.0.1:96%02d", i)}
			now := time.Now().UnixNano()
			peerRegister(t, stale, conflictApp, host, older, now-int64(time.Second))
			peerRegister(t, fresh, conflictApp, host, newer, now)
			if r, err := postForm(stale.addr(), "renew", instanceParams(conflictApp, host)); err != nil || r.Code != 0 {
				t.Fatalf("renew %s on %s: %v %s", host, stale.name, err, r)
			}
			for _, n := range both {
				eventually(t, fmt.Sprintf("%s holds the newer copy of %s", n.name, host), func() (bool, string) {
					ins, r, err := fetchApp(n.addr(), conflictApp)
					if err != nil {
						return false, err.Error()
					}
					return reflect.DeepEqual(ins[host].Addrs, newer), r.String()
				})
			}
		}
	})

	check(t, "poll_on_go_wakes_for_register_on_ours", func(t *testing.T) {
		pollWakes(t, goNode, ours, "h-poll-1", want)
	})
	check(t, "poll_on_ours_wakes_for_register_on_go", func(t *testing.T) {
		pollWakes(t, ours, goNode, "h-poll-2", want)
	})

	check(t, "sdk_in_mixed_cluster", func(t *testing.T) {
		// SDK clients seeded with one node learn both from infra.discovery; a
		// provider's register lands on one of them and shows on both; a
		// consumer polling either node sees it.
		consumer := newSDK(t, goNode.addr(), "mixed-consumer")
		provider := newSDK(t, ours.addr(), "mixed-provider")
		if consumer == nil || provider == nil {
			return
		}
		defer consumer.Close()
		defer provider.Close()
		self := consumer.Build("infra.discovery")
		defer self.Close()
		waitResolver(t, self, waitFor, "consumer learns both nodes", func(info *naming.InstancesInfo) (bool, string) {
			addrs := map[string]bool{}
			for _, in := range info.Instances[zone] {
				for _, a := range in.Addrs {
					addrs[a] = true
				}
			}
			return addrs["http://"+oursAddr] && addrs["http://"+goAddr], "instances: " + sdkDescribe(info)
		})
		// Register first: the Go original can miss a change that lands while
		// a poll is being set up (it checks, then parks), which has nothing to
		// do with our node.
		cancelReg, err := provider.Register(&naming.Instance{
			Region: region, Zone: zone, Env: deployEnv, AppID: sdkMixedApp,
			Addrs: []string{"grpc://127.0.0.1:9400"}, Version: "v1",
		})
		if err != nil {
			t.Fatalf("Register: %v", err)
		}
		for _, n := range both {
			eventually(t, "provider on "+n.name, func() (bool, string) {
				ins, r, err := fetchApp(n.addr(), sdkMixedApp)
				if err != nil {
					return false, err.Error()
				}
				_, found := ins["mixed-provider"]
				return found, r.String()
			})
		}
		apps := consumer.Build(sdkMixedApp)
		defer apps.Close()
		waitResolver(t, apps, waitFor, "consumer sees the provider", func(info *naming.InstancesInfo) (bool, string) {
			hosts := sdkHosts(info)
			return hosts == "mixed-provider", "hosts: " + hosts
		})
		cancelReg()
		for _, n := range both {
			eventually(t, "provider gone from "+n.name, func() (bool, string) {
				ins, r, err := fetchApp(n.addr(), sdkMixedApp)
				if err != nil {
					return false, err.Error()
				}
				return len(ins) == 0, r.String()
			})
		}
	})

	// Many instances, so that our node forwards over every connection it keeps
	// to the Go node (it spreads instances over several).
	manyHosts := make([]string, 32)
	for i := range manyHosts {
		manyHosts[i] = fmt.Sprintf("h-many-%02d", i)
	}
	check(t, "many_registers_on_ours_reach_go", func(t *testing.T) {
		for i, h := range manyHosts {
			r, err := postForm(ours.addr(), "register", registerParams(manyApp, h, []string{fmt.Sprintf("grpc://127.0.0.1:97%02d", i)}, nil))
			if err != nil || r.Code != 0 {
				t.Fatalf("register %s on ours: %v %s", h, err, r)
			}
		}
		eventually(t, "go holds all 32", func() (bool, string) {
			ins, r, err := fetchApp(goNode.addr(), manyApp)
			if err != nil {
				return false, err.Error()
			}
			return len(ins) == len(manyHosts), r.String()
		})
	})

	check(t, "ours_survives_go_restart", func(t *testing.T) {
		goNode.stop(syscall.SIGKILL)
		// Writes on ours keep working while its peer is down.
		start := time.Now()
		registerOn(t, ours, "h-while-go-down", []string{"grpc://127.0.0.1:9203"})
		want["h-while-go-down"] = []string{"grpc://127.0.0.1:9203"}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("register on ours took %v while the Go node was down", d)
		}
		if r, err := postForm(ours.addr(), "renew", instanceParams(mixedApp, "h-ours")); err != nil || r.Code != 0 {
			t.Errorf("renew on ours while the Go node is down: %v %s", err, r)
		}
		eventually(t, "ours reports the Go node lost", func() (bool, string) {
			st, raw := nodeStatus(ours, goNode.addr())
			return st == 1, raw
		})

		goNode.start() // syncs from ours (fetch/all) before it listens
		expectSame(t, both, want)
		// Ours also retries the register the Go node missed while down; when that arrives
		// after the sync, the Go original stamps its own reg_timestamp on it (it does on every
		// register), so only the version (dirty_timestamp) must agree for that one.
		expectSameTimestamps(t, ours, goNode, "h-while-go-down")

		// A successful replication marks the peer up again.
		if r, err := postForm(ours.addr(), "renew", instanceParams(mixedApp, "h-ours")); err != nil || r.Code != 0 {
			t.Errorf("renew on ours after the Go node restarted: %v %s", err, r)
		}
		eventually(t, "ours reports the Go node up", func() (bool, string) {
			st, raw := nodeStatus(ours, goNode.addr())
			return st == 0, raw
		})
	})

	check(t, "cancels_on_ours_after_go_restart_reach_go", func(t *testing.T) {
		// The restarted Go node got these back from ours at start-up. Cancels
		// sent to ours now must reach it too, over whatever connections ours
		// held to the Go node before the restart.
		for _, h := range manyHosts {
			r, err := postForm(ours.addr(), "cancel", instanceParams(manyApp, h))
			if err != nil || r.Code != 0 {
				t.Fatalf("cancel %s on ours: %v %s", h, err, r)
			}
		}
		eventually(t, "go holds none of the 32", func() (bool, string) {
			ins, r, err := fetchApp(goNode.addr(), manyApp)
			if err != nil {
				return false, err.Error()
			}
			return len(ins) == 0, fmt.Sprintf("%d left: %s", len(ins), r)
		})
	})

	check(t, "writes_replicate_after_go_restart", func(t *testing.T) {
		registerOn(t, goNode, "h-after-go-restart", []string{"grpc://127.0.0.1:9204"})
		want["h-after-go-restart"] = []string{"grpc://127.0.0.1:9204"}
		registerOn(t, ours, "h-after-go-restart-2", []string{"grpc://127.0.0.1:9205"})
		want["h-after-go-restart-2"] = []string{"grpc://127.0.0.1:9205"}
		expectSame(t, both, want)
	})

	check(t, "ours_restart_syncs_from_go", func(t *testing.T) {
		ours.stop(syscall.SIGTERM)
		registerOn(t, goNode, "h-while-ours-down", []string{"grpc://127.0.0.1:9206"})
		want["h-while-ours-down"] = []string{"grpc://127.0.0.1:9206"}
		ours.start() // syncs from the Go node at start-up
		expectSame(t, both, want)
		expectSameTimestamps(t, ours, goNode)
	})

	check(t, "writes_replicate_after_ours_restart", func(t *testing.T) {
		registerOn(t, goNode, "h-after-ours-restart", []string{"grpc://127.0.0.1:9207"})
		want["h-after-ours-restart"] = []string{"grpc://127.0.0.1:9207"}
		registerOn(t, ours, "h-after-ours-restart-2", []string{"grpc://127.0.0.1:9208"})
		want["h-after-ours-restart-2"] = []string{"grpc://127.0.0.1:9208"}
		expectSame(t, both, want)
		for _, via := range both {
			if r, err := postForm(via.addr(), "renew", instanceParams(mixedApp, "h-while-ours-down")); err != nil || r.Code != 0 {
				t.Errorf("renew on %s after our restart: %v %s", via.name, err, r)
			}
		}
	})

	check(t, "cancel_on_either_removes_on_both", func(t *testing.T) {
		hosts := make([]string, 0, len(want))
		for h := range want {
			hosts = append(hosts, h)
		}
		sort.Strings(hosts)
		for i, h := range hosts {
			via := both[i%2]
			r, err := postForm(via.addr(), "cancel", instanceParams(mixedApp, h))
			if err != nil || r.Code != 0 {
				t.Errorf("cancel %s on %s: %v %s", h, via.name, err, r)
			}
			delete(want, h)
			expectSame(t, both, want)
		}
		for _, n := range both {
			if _, r, err := fetchApp(n.addr(), mixedApp); err != nil || r.Code != -404 {
				t.Errorf("%s: fetch after the last cancel should answer -404: %v %s", n.name, err, r)
			}
		}
	})
}

func registerOn(t *testing.T, n *node, host string, addrs []string) {
	t.Helper()
	md := map[string]string{"weight": "10", "tags": "a,b"}
	r, err := postForm(n.addr(), "register", registerParams(mixedApp, host, addrs, md))
	if err != nil || r.Code != 0 {
		t.Fatalf("register %s on %s: err %v answer %s", host, n.name, err, r)
	}
}

// peerRegister registers an instance on n the way a peer forwards it
// (replication=true, so n does not forward it further), with the given
// dirty_timestamp.
func peerRegister(t *testing.T, n *node, appid, host string, addrs []string, dirty int64) {
	t.Helper()
	p := registerParams(appid, host, addrs, map[string]string{})
	p.Set("replication", "true")
	p.Set("from_zone", "true")
	ts := strconv.FormatInt(dirty, 10)
	p.Set("reg_timestamp", ts)
	p.Set("dirty_timestamp", ts)
	p.Set("latest_timestamp", ts)
	r, err := postForm(n.addr(), "register", p)
	if err != nil || r.Code != 0 {
		t.Fatalf("peer register of %s on %s: %v %s", host, n.name, err, r)
	}
}

// expectSame waits until every node holds exactly the hostnames in want, with
// the same addrs (as a list), status 1, version and metadata.
func expectSame(t *testing.T, nodes []*node, want map[string][]string) {
	t.Helper()
	for _, n := range nodes {
		eventually(t, n.name+" holds "+strings.Join(sortedKeys(want), ","), func() (bool, string) {
			ins, r, err := fetchApp(n.addr(), mixedApp)
			if err != nil {
				return false, err.Error()
			}
			if len(ins) != len(want) {
				return false, "has " + describe(ins)
			}
			for h, addrs := range want {
				in, found := ins[h]
				if !found {
					return false, "missing " + h + ": " + describe(ins)
				}
				if !reflect.DeepEqual(in.Addrs, addrs) || in.Status != 1 || in.Version != "v1.0.0" ||
					in.Metadata["tags"] != "a,b" || in.Metadata["weight"] != "10" {
					return false, fmt.Sprintf("%s differs from what was registered: %s", h, r)
				}
			}
			return true, ""
		})
	}
}

// expectSameTimestamps checks that a node that synced at start-up copied the
// instances with the peer's timestamps.
func expectSameTimestamps(t *testing.T, a, b *node, regMayDiffer ...string) {
	t.Helper()
	x, _, err1 := fetchApp(a.addr(), mixedApp)
	y, _, err2 := fetchApp(b.addr(), mixedApp)
	if err1 != nil || err2 != nil {
		t.Errorf("fetch: %v %v", err1, err2)
		return
	}
	for h, in := range x {
		o := y[h]
		regDiffers := in.RegTimestamp != o.RegTimestamp && !slices.Contains(regMayDiffer, h)
		if regDiffers || in.DirtyTimestamp != o.DirtyTimestamp {
			t.Errorf("%s: reg/dirty timestamps differ: %s %d/%d, %s %d/%d",
				h, a.name, in.RegTimestamp, in.DirtyTimestamp, b.name, o.RegTimestamp, o.DirtyTimestamp)
		}
	}
}

func renewTimestamps(t *testing.T, nodes []*node, host string) map[string]int64 {
	out := map[string]int64{}
	for _, n := range nodes {
		ins, _, err := fetchAllApp(n.addr(), mixedApp)
		if err != nil {
			t.Errorf("fetch/all on %s: %v", n.name, err)
		}
		out[n.name] = ins[host].RenewTimestamp
	}
	return out
}

// pollWakes parks a poll on watcher, registers host on writer and expects the
// poll to answer with the new instance.
func pollWakes(t *testing.T, watcher, writer *node, host string, want map[string][]string) {
	t.Helper()
	_, r, err := fetchApp(watcher.addr(), mixedApp)
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	var info instancesInfo
	_ = json.Unmarshal(r.Data, &info)
	type result struct {
		r   reply
		err error
	}
	done := make(chan result, 1)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	go func() {
		r, err := get(ctx, watcher.addr(), "poll", url.Values{
			"appid": {mixedApp}, "env": {deployEnv}, "hostname": {"poller-" + host},
			"latest_timestamp": {strconv.FormatInt(info.LatestTimestamp, 10)},
		})
		done <- result{r, err}
	}()
	// The poll is parked on an unchanged app; make sure it is, then write.
	select {
	case res := <-done:
		t.Fatalf("poll on %s answered before any change: %v %s", watcher.name, res.err, res.r)
	case <-time.After(300 * time.Millisecond):
	}
	addrs := []string{"grpc://127.0.0.1:9300"}
	registerOn(t, writer, host, addrs)
	want[host] = addrs
	res := <-done
	if res.err != nil {
		t.Fatalf("poll on %s: %v", watcher.name, res.err)
	}
	if res.r.Code != 0 || !strings.Contains(res.r.raw, `"`+host+`"`) {
		t.Errorf("poll on %s should answer the new instance %s: %s", watcher.name, host, res.r)
	}
}

// nodeStatus is the status (0 up, 1 lost, -1 absent) n reports for peer.
func nodeStatus(n *node, peer string) (int, string) {
	r, err := get(context.Background(), n.addr(), "nodes", nil)
	if err != nil {
		return -1, err.Error()
	}
	var list []struct {
		Addr   string `json:"addr"`
		Status int    `json:"status"`
	}
	_ = json.Unmarshal(r.Data, &list)
	for _, e := range list {
		if e.Addr == peer {
			return e.Status, r.raw
		}
	}
	return -1, r.raw
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
