// What the suite reads back from the nodes (fetch/all, fetchs, /metrics), a sampler that
// records it every second, and the results table.

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Registry is one node's fetch/all: instance key -> its JSON fields.
type Registry map[string]map[string]any

func instKey(m map[string]any) string {
	return fmt.Sprintf("%v/%v/%v/%v", m["env"], m["appid"], m["zone"], m["hostname"])
}

// FetchAll reads a node's whole registry.
func (w *Workload) FetchAll(ctx context.Context, n *Node) (Registry, error) {
	r := w.Call(ctx, n, "GET", "/discovery/fetch/all", url.Values{}, 5*time.Second)
	if r.Err != nil {
		return nil, r.Err
	}
	if r.HTTP != 200 || r.Code != 0 {
		return nil, fmt.Errorf("HTTP %d code %d", r.HTTP, r.Code)
	}
	var apps map[string][]map[string]any
	if err := decodeNumbers(r.Data, &apps); err != nil {
		return nil, err
	}
	reg := Registry{}
	for _, list := range apps {
		for _, in := range list {
			reg[instKey(in)] = in
		}
	}
	return reg, nil
}

func decodeNumbers(data []byte, v any) error {
	d := json.NewDecoder(strings.NewReader(string(data)))
	d.UseNumber()
	return d.Decode(v)
}

// canon is an instance without the fields named in `skip`, as comparable text.
func canon(m map[string]any, skip ...string) string {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	for _, s := range skip {
		delete(c, s)
	}
	// No metadata is `null` or `{}` depending on the path a copy took (the Go original
	// forwards an empty form value); every client reads both as none.
	if md, ok := c["metadata"].(map[string]any); ok && len(md) == 0 {
		c["metadata"] = nil
	}
	b, _ := json.Marshal(c)
	return string(b)
}

func tsField(m map[string]any, k string) int64 {
	if n, ok := m[k].(json.Number); ok {
		v, _ := n.Int64()
		return v
	}
	return 0
}

// Diff describes how the registries differ (empty when identical), ignoring `skip` fields.
func Diff(names []string, regs []Registry, skip ...string) string {
	d, _ := DiffExcept(names, regs, nil, skip...)
	return d
}

// DiffExcept is Diff leaving out the instances in `except`; it also returns the keys that
// differ.
func DiffExcept(names []string, regs []Registry, except map[string]bool, skip ...string) (string, []string) {
	keys := map[string]bool{}
	for _, r := range regs {
		for k := range r {
			keys[k] = true
		}
	}
	var sorted []string
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	var out, differ []string
	for _, k := range sorted {
		if except[k] {
			continue
		}
		var vals []string
		same := true
		for i, r := range regs {
			v := "absent"
			if m, ok := r[k]; ok {
				v = canon(m, skip...)
			}
			vals = append(vals, v)
			if i > 0 && v != vals[0] {
				same = false
			}
		}
		if !same {
			differ = append(differ, k)
			out = append(out, fmt.Sprintf("%s: %s", k, fieldDiff(names, regs, k, skip)))
		}
	}
	if len(out) == 0 {
		return "", nil
	}
	head := fmt.Sprintf("%d instances differ", len(out))
	if len(out) > 4 {
		out = append(out[:4], "...")
	}
	return head + "; " + strings.Join(out, "; "), differ
}

// fieldDiff names the fields of one instance that differ between nodes.
func fieldDiff(names []string, regs []Registry, key string, skip []string) string {
	fields := map[string]bool{}
	var parts []string
	for i, r := range regs {
		m, ok := r[key]
		if !ok {
			parts = append(parts, names[i]+" absent")
			continue
		}
		for f := range m {
			fields[f] = true
		}
	}
	var fs []string
	for f := range fields {
		fs = append(fs, f)
	}
	sort.Strings(fs)
	for _, f := range fs {
		skipped := false
		for _, s := range skip {
			if s == f {
				skipped = true
			}
		}
		if skipped {
			continue
		}
		var vals []string
		differ := false
		for i, r := range regs {
			v := "-"
			if m, ok := r[key]; ok {
				b, _ := json.Marshal(m[f])
				v = string(b)
			}
			vals = append(vals, names[i]+"="+v)
			if i > 0 && !strings.HasSuffix(vals[i], "="+strings.SplitN(vals[0], "=", 2)[1]) {
				differ = true
			}
		}
		if differ {
			parts = append(parts, f+" "+strings.Join(vals, " "))
		}
	}
	return strings.Join(parts, ", ")
}

// Metrics reads a node's /metrics into name -> value.
func (w *Workload) Metrics(ctx context.Context, n *Node) map[string]int64 {
	out := map[string]int64{}
	if n.Go || !n.Running() {
		return out
	}
	body, err := rawGet(ctx, "http://"+n.Addr+"/metrics")
	if err != nil {
		return out
	}
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) == 2 {
			if v, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				out[f[0]] = v
			}
		}
	}
	return out
}

// Sample is one node's state at one moment.
type Sample struct {
	At        time.Time
	Node      string
	Instances int              // workload instances held
	Latest    map[string]int64 // app -> latest_timestamp
	Protected int64
}

// Sampler reads every node every second.
type Sampler struct {
	mu        sync.Mutex
	Samples   []Sample
	Backwards []string // an app's latest_timestamp went down on a node between two samples
	last      map[string]map[string]int64
}

// Run samples until ctx ends.
func (s *Sampler) Run(ctx context.Context, w *Workload) {
	s.last = map[string]map[string]int64{}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i := 0; i < 1_000_000; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var wg sync.WaitGroup
		for _, n := range w.c.Nodes {
			if !n.Serving() {
				continue
			}
			wg.Add(1)
			go func(n *Node) {
				defer wg.Done()
				s.sample(ctx, w, n)
			}(n)
		}
		wg.Wait()
	}
}

func (s *Sampler) sample(ctx context.Context, w *Workload, n *Node) {
	params := url.Values{"env": {env}, "status": {"3"}}
	for _, a := range w.Apps {
		params.Add("appid", a)
	}
	r := w.Call(ctx, n, "GET", "/discovery/fetchs", params, 3*time.Second)
	if r.Err != nil || r.Code != 0 {
		return
	}
	var data map[string]infoJSON
	if json.Unmarshal(r.Data, &data) != nil {
		return
	}
	smp := Sample{At: time.Now(), Node: n.Name, Latest: map[string]int64{}}
	for app, info := range data {
		smp.Latest[app] = info.Latest
		for _, list := range info.Instances {
			smp.Instances += len(list)
		}
	}
	smp.Protected = w.Metrics(ctx, n)["discovery_self_preservation"]
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.last[n.Name]
	for app, ts := range smp.Latest {
		if p, ok := prev[app]; ok && ts < p {
			s.Backwards = append(s.Backwards, fmt.Sprintf("%s %s %s: %d after %d (%.1fs back)",
				smp.At.Format("15:04:05"), n.Name, app, ts, p, float64(p-ts)/1e9))
		}
	}
	if prev == nil {
		prev = map[string]int64{}
		s.last[n.Name] = prev
	}
	for app, ts := range smp.Latest {
		if ts > prev[app] {
			prev[app] = ts
		}
	}
	s.Samples = append(s.Samples, smp)
}

// Between lists a node's samples in [from, to].
func (s *Sampler) Between(node string, from, to time.Time) []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Sample
	for _, x := range s.Samples {
		if x.Node == node && !x.At.Before(from) && !x.At.After(to) {
			out = append(out, x)
		}
	}
	return out
}

// ---- results ------------------------------------------------------------------------------

// Result is one check's outcome.
type Result struct {
	Name   string
	OK     bool
	Detail string
}

// Results collects checks in order.
type Results struct {
	mu   sync.Mutex
	List []Result
}

// Check records one check and prints it at once.
func (r *Results) Check(name string, ok bool, format string, args ...any) bool {
	d := fmt.Sprintf(format, args...)
	r.mu.Lock()
	r.List = append(r.List, Result{name, ok, d})
	r.mu.Unlock()
	status := "PASS"
	if !ok {
		status = "FAIL"
	}
	fmt.Printf("--- %s: %s  %s\n", status, name, d)
	return ok
}

// Counts is passed, failed.
func (r *Results) Counts() (int, int) {
	p, f := 0, 0
	for _, x := range r.List {
		if x.OK {
			p++
		} else {
			f++
		}
	}
	return p, f
}
