package interop

// The Go SDK of the original project (github.com/bilibili/discovery/naming)
// against our server: register + automatic renew, Build/Watch/Fetch, and the
// SDK's self-discovery of the infra.discovery nodes.

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bilibili/discovery/naming"
)

const sdkApp = "demo.sdk"

// sdkRenewGap is the SDK's fixed renew interval (naming._registerGap).
const sdkRenewGap = 30 * time.Second

func TestGoSDK(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	ours := startOurs(t, "ours", nodeConfig{Addr: addr, Host: "rs-sdk", Nodes: []string{addr}})

	// Every client gets only the proxy as its seed node. Once the SDK has read
	// infra.discovery it must talk to the address our node registered there.
	proxy := startProxy(t, ours.addr())

	var consumer, provider1, provider2 *naming.Discovery
	ok := check(t, "New_learns_nodes_from_infra.discovery", func(t *testing.T) {
		consumer = newSDK(t, proxy.addr(), "consumer-1")
		provider1 = newSDK(t, proxy.addr(), "provider-1")
		provider2 = newSDK(t, proxy.addr(), "provider-2")
		if consumer == nil || provider1 == nil || provider2 == nil {
			return
		}
		self := consumer.Build("infra.discovery")
		defer self.Close()
		waitResolver(t, self, waitFor, "infra.discovery lists our node", func(info *naming.InstancesInfo) (bool, string) {
			for _, in := range info.Instances[zone] {
				for _, a := range in.Addrs {
					if a == "http://"+ours.addr() {
						return true, ""
					}
				}
			}
			return false, "instances: " + sdkDescribe(info)
		})
	})
	if !ok {
		return
	}
	// From here on the seed is gone: everything must reach our node directly.
	proxy.close()

	apps := consumer.Build(sdkApp)
	defer apps.Close()

	var registeredAt time.Time
	var cancel1 func()
	ok = check(t, "Register_provider", func(t *testing.T) {
		var err error
		cancel1, err = provider1.Register(&naming.Instance{
			Region: region, Zone: zone, Env: deployEnv, AppID: sdkApp,
			Addrs:    []string{"grpc://127.0.0.1:9001", "http://127.0.0.1:8001"},
			Version:  "v1.0.0",
			Metadata: map[string]string{"weight": "10", "color": "red", "list": "a,b"},
		})
		registeredAt = time.Now()
		if err != nil {
			t.Fatalf("Register: %v", err)
		}
		ins, r, err := fetchApp(ours.addr(), sdkApp)
		if err != nil {
			t.Fatalf("fetch after register: %v", err)
		}
		in, found := ins["provider-1"]
		if !found {
			t.Fatalf("provider-1 not in fetch answer: %s", r)
		}
		if strings.Join(in.Addrs, " ") != "grpc://127.0.0.1:9001 http://127.0.0.1:8001" || in.Status != 1 ||
			in.Version != "v1.0.0" || in.Metadata["list"] != "a,b" || in.Metadata["weight"] != "10" {
			t.Errorf("stored instance differs from the registered one: %s", r)
		}
	})
	if !ok {
		return
	}

	check(t, "consumer_Watch_sees_provider", func(t *testing.T) {
		waitResolver(t, apps, waitFor, "consumer sees provider-1", func(info *naming.InstancesInfo) (bool, string) {
			hosts := sdkHosts(info)
			return hosts == "provider-1", "hosts: " + hosts
		})
	})

	var cancel2 func()
	check(t, "second_provider_appears", func(t *testing.T) {
		var err error
		// No metadata: the SDK then sends an empty metadata parameter.
		cancel2, err = provider2.Register(&naming.Instance{
			Region: region, Zone: zone, Env: deployEnv, AppID: sdkApp,
			Addrs: []string{"grpc://127.0.0.1:9002"}, Version: "v1.0.1",
		})
		if err != nil {
			t.Fatalf("Register provider-2: %v", err)
		}
		waitResolver(t, apps, waitFor, "consumer sees both providers", func(info *naming.InstancesInfo) (bool, string) {
			hosts := sdkHosts(info)
			return hosts == "provider-1 provider-2", "hosts: " + hosts
		})
	})

	check(t, "second_provider_disappears", func(t *testing.T) {
		if cancel2 == nil {
			t.Skip("provider-2 did not register")
		}
		cancel2() // stops renewing and sends cancel
		waitResolver(t, apps, waitFor, "consumer sees provider-1 only", func(info *naming.InstancesInfo) (bool, string) {
			hosts := sdkHosts(info)
			return hosts == "provider-1", "hosts: " + hosts
		})
		ins, r, err := fetchApp(ours.addr(), sdkApp)
		if err != nil || len(ins) != 1 {
			t.Errorf("fetch after cancel of provider-2: %v %s", err, r)
		}
	})

	check(t, "Set_metadata_reaches_consumer", func(t *testing.T) {
		err := provider1.Set(&naming.Instance{
			AppID: sdkApp, Version: "v1.0.0",
			Metadata: map[string]string{"weight": "20", "color": "red", "list": "a,b"},
		})
		if err != nil {
			t.Fatalf("Set: %v", err)
		}
		waitResolver(t, apps, waitFor, "consumer sees weight 20", func(info *naming.InstancesInfo) (bool, string) {
			for _, list := range info.Instances {
				for _, in := range list {
					if in.Hostname == "provider-1" && in.Metadata["weight"] == "20" {
						return true, ""
					}
				}
			}
			return false, "instances: " + sdkDescribe(info)
		})
	})

	check(t, "provider_renews_and_stays", func(t *testing.T) {
		// The SDK renews every 30 s; wait for one renew to land.
		deadline := registeredAt.Add(sdkRenewGap + 15*time.Second)
		var last string
		for time.Now().Before(deadline) {
			ins, r, err := fetchAllApp(ours.addr(), sdkApp)
			if err != nil {
				t.Fatalf("fetch: %v", err)
			}
			in, found := ins["provider-1"]
			if !found {
				t.Fatalf("provider-1 vanished before its first renew: %s", r)
			}
			if in.RenewTimestamp > in.RegTimestamp {
				t.Logf("renew seen %v after register", time.Since(registeredAt).Round(time.Second))
				return
			}
			last = r.String()
			time.Sleep(500 * time.Millisecond)
		}
		t.Errorf("no renew of provider-1 seen within %v of its register (renew_timestamp never passed reg_timestamp): %s",
			sdkRenewGap+15*time.Second, last)
	})

	check(t, "cancel_removes_provider", func(t *testing.T) {
		cancel1()
		ins, r, err := fetchApp(ours.addr(), sdkApp)
		if err != nil || len(ins) != 0 || r.Code != -404 {
			t.Errorf("after the last cancel a fetch should answer -404, got %v %s", err, r)
		}
	})
	consumer.Close()
	provider1.Close()
	provider2.Close()
}

// newSDK runs naming.New, which blocks until the first infra.discovery poll is answered.
func newSDK(t *testing.T, seed, host string) *naming.Discovery {
	t.Helper()
	done := make(chan *naming.Discovery, 1)
	go func() {
		done <- naming.New(&naming.Config{
			Nodes: []string{seed}, Region: region, Zone: zone, Env: deployEnv, Host: host,
		})
	}()
	select {
	case d := <-done:
		return d
	case <-time.After(waitFor):
		t.Errorf("naming.New(%s) did not return within %v: its first polls of infra.discovery got no usable answer", host, waitFor)
		return nil
	}
}

// waitResolver checks r.Fetch() now and after every Watch event until cond holds.
func waitResolver(t *testing.T, r naming.Resolver, limit time.Duration, what string, cond func(*naming.InstancesInfo) (bool, string)) {
	t.Helper()
	deadline := time.After(limit)
	why := "no instances fetched yet"
	for {
		if info, ok := r.Fetch(); ok {
			var done bool
			if done, why = cond(info); done {
				return
			}
		}
		select {
		case <-r.Watch():
		case <-deadline:
			t.Errorf("%s: not seen within %v: %s", what, limit, why)
			return
		}
	}
}

func sdkHosts(info *naming.InstancesInfo) string {
	var hosts []string
	for _, list := range info.Instances {
		for _, in := range list {
			hosts = append(hosts, in.Hostname)
		}
	}
	sort.Strings(hosts)
	return strings.Join(hosts, " ")
}

func sdkDescribe(info *naming.InstancesInfo) string {
	var parts []string
	for z, list := range info.Instances {
		for _, in := range list {
			parts = append(parts, fmt.Sprintf("%s/%s%v%v", z, in.Hostname, in.Addrs, in.Metadata))
		}
	}
	return strings.Join(parts, " ")
}
