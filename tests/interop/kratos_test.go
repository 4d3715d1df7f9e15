package interop

// kratos v2 registry requests (POST parameters in the URL, empty body) against
// our server: register, renew, GetService, Watcher.Next, deregister.

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-kratos/kratos/v2/registry"
)

const kratosApp = "demo.kratos"

func TestKratosV2Registry(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	ours := startOurs(t, "ours", nodeConfig{Addr: addr, Host: "rs-kratos", Nodes: []string{addr}})

	provider1 := newKratosClient(ours.addr(), "kratos-1")
	provider2 := newKratosClient(ours.addr(), "kratos-2")
	consumer := newKratosClient(ours.addr(), "kratos-consumer")
	svc1 := &registry.ServiceInstance{
		ID: "svc-1", Name: kratosApp, Version: "v2.0.0",
		Metadata:  map[string]string{"color": "gray"},
		Endpoints: []string{"grpc://127.0.0.1:9101", "http://127.0.0.1:8101"},
	}
	svc2 := &registry.ServiceInstance{
		ID: "svc-2", Name: kratosApp, Version: "v2.0.1",
		Endpoints: []string{"grpc://127.0.0.1:9102"},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	ok := check(t, "Register_params_in_URL", func(t *testing.T) {
		if err := provider1.Register(ctx, svc1); err != nil {
			t.Fatalf("Register: %v", err)
		}
		ins, r, err := fetchApp(ours.addr(), kratosApp)
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		in, found := ins["kratos-1"]
		if !found {
			t.Fatalf("kratos-1 not registered: %s", r)
		}
		if strings.Join(in.Addrs, " ") != "grpc://127.0.0.1:9101 http://127.0.0.1:8101" || in.Version != "v2.0.0" ||
			in.Status != 1 || in.Metadata[kratosInstanceIDKey] != "svc-1" || in.Metadata["color"] != "gray" {
			t.Errorf("stored instance differs from the registered one: %s", r)
		}
	})
	if !ok {
		return
	}

	check(t, "renew_params_in_URL", func(t *testing.T) {
		before, _, _ := fetchAllApp(ours.addr(), kratosApp)
		code, err := provider1.renew(ctx, kratosApp)
		if err != nil || code != 0 {
			t.Fatalf("renew: code %d err %v", code, err)
		}
		after, r, _ := fetchAllApp(ours.addr(), kratosApp)
		if after["kratos-1"].RenewTimestamp <= before["kratos-1"].RenewTimestamp {
			t.Errorf("renew_timestamp did not advance: %s", r)
		}
	})

	check(t, "GetService", func(t *testing.T) {
		got, err := consumer.GetService(ctx, kratosApp)
		if err != nil {
			t.Fatalf("GetService: %v", err)
		}
		if ids := serviceIDs(got); ids != "svc-1" {
			t.Errorf("GetService ids = %q, want svc-1", ids)
		}
		if len(got) == 1 && strings.Join(got[0].Endpoints, " ") != "grpc://127.0.0.1:9101 http://127.0.0.1:8101" {
			t.Errorf("endpoints = %v", got[0].Endpoints)
		}
	})

	w, _ := consumer.Watch(ctx, kratosApp)
	check(t, "Watcher_Next_initial", func(t *testing.T) {
		got, err := nextWithin(w, waitFor)
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if ids := serviceIDs(got); ids != "svc-1" {
			t.Errorf("Next ids = %q, want svc-1", ids)
		}
	})

	check(t, "Watcher_Next_sees_register", func(t *testing.T) {
		type result struct {
			got []*registry.ServiceInstance
			err error
		}
		done := make(chan result, 1)
		go func() {
			got, err := nextWithin(w, waitFor)
			done <- result{got, err}
		}()
		if err := provider2.Register(ctx, svc2); err != nil {
			t.Fatalf("Register svc-2: %v", err)
		}
		res := <-done
		if res.err != nil {
			t.Fatalf("Next: %v", res.err)
		}
		if ids := serviceIDs(res.got); ids != "svc-1 svc-2" {
			t.Errorf("Next ids = %q, want \"svc-1 svc-2\"", ids)
		}
	})

	check(t, "Watcher_Next_sees_deregister", func(t *testing.T) {
		done := make(chan []*registry.ServiceInstance, 1)
		errs := make(chan error, 1)
		go func() {
			got, err := nextWithin(w, waitFor)
			if err != nil {
				errs <- err
				return
			}
			done <- got
		}()
		if err := provider2.Deregister(ctx, svc2); err != nil {
			t.Fatalf("Deregister svc-2: %v", err)
		}
		select {
		case err := <-errs:
			t.Fatalf("Next: %v", err)
		case got := <-done:
			if ids := serviceIDs(got); ids != "svc-1" {
				t.Errorf("Next ids = %q, want svc-1", ids)
			}
		}
	})

	check(t, "Deregister_last_removes_app", func(t *testing.T) {
		if err := provider1.Deregister(ctx, svc1); err != nil {
			t.Fatalf("Deregister: %v", err)
		}
		ins, r, err := fetchApp(ours.addr(), kratosApp)
		if err != nil || len(ins) != 0 || r.Code != -404 {
			t.Errorf("fetch after the last deregister: want -404, got %v %s", err, r)
		}
		// kratos re-registers when a renew answers -404.
		code, err := provider1.renew(ctx, kratosApp)
		if err != nil || code != -404 {
			t.Errorf("renew of a cancelled instance: want code -404, got %d (err %v)", code, err)
		}
	})
}

// nextWithin calls w.Next but gives up after limit.
func nextWithin(w registry.Watcher, limit time.Duration) ([]*registry.ServiceInstance, error) {
	type result struct {
		got []*registry.ServiceInstance
		err error
	}
	done := make(chan result, 1)
	go func() {
		got, err := w.Next()
		done <- result{got, err}
	}()
	select {
	case r := <-done:
		return r.got, r.err
	case <-time.After(limit):
		return nil, context.DeadlineExceeded
	}
}

func serviceIDs(list []*registry.ServiceInstance) string {
	var ids []string
	for _, s := range list {
		ids = append(ids, s.ID)
	}
	sort.Strings(ids)
	return strings.Join(ids, " ")
}
