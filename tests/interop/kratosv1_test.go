package interop

// kratos v1's discovery client (github.com/go-kratos/kratos/pkg/naming/discovery,
// the version the Go original itself depends on) against our server; unlike the
// bilibili SDK it can register an instance as WAITING and Set its status.

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-kratos/kratos/pkg/naming"
	kv1 "github.com/go-kratos/kratos/pkg/naming/discovery"
)

const kratosV1App = "demo.kratos.v1"

func TestKratosV1Naming(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	ours := startOurs(t, "ours", nodeConfig{Addr: addr, Host: "rs-kratos-v1", Nodes: []string{addr}})

	consumer := newKratosV1(t, ours.addr(), "kv1-consumer")
	up := newKratosV1(t, ours.addr(), "kv1-up")
	waiting := newKratosV1(t, ours.addr(), "kv1-waiting")
	if consumer == nil || up == nil || waiting == nil {
		return
	}
	defer consumer.Close()
	defer up.Close()
	defer waiting.Close()
	ctx := context.Background()
	apps := consumer.Build(kratosV1App)
	defer apps.Close()

	var cancelUp, cancelWaiting context.CancelFunc
	ok := check(t, "Register_UP_and_WAITING", func(t *testing.T) {
		var err error
		cancelUp, err = up.Register(ctx, &naming.Instance{
			Region: region, Zone: zone, Env: deployEnv, AppID: kratosV1App,
			Addrs: []string{"grpc://127.0.0.1:9501"}, Version: "v1", Status: 1,
		})
		if err != nil {
			t.Fatalf("Register UP: %v", err)
		}
		cancelWaiting, err = waiting.Register(ctx, &naming.Instance{
			Region: region, Zone: zone, Env: deployEnv, AppID: kratosV1App,
			Addrs: []string{"grpc://127.0.0.1:9502"}, Version: "v1", Status: 2,
			Metadata: map[string]string{"weight": "1"},
		})
		if err != nil {
			t.Fatalf("Register WAITING: %v", err)
		}
		ins, r, err := fetchApp(ours.addr(), kratosV1App)
		if err != nil || ins["kv1-up"].Status != 1 || ins["kv1-waiting"].Status != 2 {
			t.Errorf("fetch status=3 should hold kv1-up (1) and kv1-waiting (2): %v %s", err, r)
		}
	})
	if !ok {
		return
	}

	check(t, "consumer_sees_only_UP", func(t *testing.T) {
		waitKratosV1(t, apps, "kv1-up")
	})

	check(t, "Set_status_UP_reaches_consumer", func(t *testing.T) {
		err := waiting.Set(&naming.Instance{AppID: kratosV1App, Version: "v1", Status: 1,
			Metadata: map[string]string{"weight": "5"}})
		if err != nil {
			t.Fatalf("Set: %v", err)
		}
		waitKratosV1(t, apps, "kv1-up kv1-waiting")
	})

	check(t, "cancel_removes_both", func(t *testing.T) {
		cancelWaiting()
		waitKratosV1(t, apps, "kv1-up")
		cancelUp()
		_, r, err := fetchApp(ours.addr(), kratosV1App)
		if err != nil || r.Code != -404 {
			t.Errorf("fetch after both cancels: want -404, got %v %s", err, r)
		}
	})
}

func newKratosV1(t *testing.T, node, host string) *kv1.Discovery {
	t.Helper()
	done := make(chan *kv1.Discovery, 1)
	go func() {
		done <- kv1.New(&kv1.Config{Nodes: []string{node}, Region: region, Zone: zone, Env: deployEnv, Host: host})
	}()
	select {
	case d := <-done:
		return d
	case <-time.After(waitFor):
		t.Errorf("kratos v1 discovery.New(%s) did not return within %v", host, waitFor)
		return nil
	}
}

// waitKratosV1 waits until the resolver's instances are exactly the given hostnames.
func waitKratosV1(t *testing.T, r naming.Resolver, want string) {
	t.Helper()
	deadline := time.After(waitFor)
	got := "(nothing fetched yet)"
	for {
		if info, ok := r.Fetch(context.Background()); ok {
			var hosts []string
			for _, list := range info.Instances {
				for _, in := range list {
					hosts = append(hosts, in.Hostname)
				}
			}
			sort.Strings(hosts)
			if got = strings.Join(hosts, " "); got == want {
				return
			}
		}
		select {
		case <-r.Watch():
		case <-deadline:
			t.Errorf("resolver: want hosts %q, still %q after %v", want, got, waitFor)
			return
		}
	}
}
