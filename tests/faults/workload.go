// The workload: instances that register, renew, change (re-register, set, cancel) and fail
// over between nodes as real clients do, and consumers long-polling every node. Every request
// and its answer goes to a log; what was acknowledged is kept for the checks.

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const env = "dev"

// State is what an instance should look like: present (with a version and status) or not.
type State struct {
	Present bool
	Version string
	Status  int
}

func (s State) String() string {
	if !s.Present {
		return "absent"
	}
	return fmt.Sprintf("%s/status %d", s.Version, s.Status)
}

// Inst is one simulated provider instance.
type Inst struct {
	ID    int
	App   string
	Host  string
	Zone  string
	Churn bool // takes part in random changes (else only renews)

	mu        sync.Mutex
	home      *Node
	gen       int
	status    int
	acked     State     // the last state a node acknowledged
	ackedAt   time.Time // when
	uncertain []State   // states sent after that without an answer (may or may not have landed)
	late      []State   // every state ever sent without an answer: a stopped node may apply it when it resumes, after later writes
	awayTicks int       // cancelled: ticks until it registers again
}

// Expect is an instance's acknowledged state and the states it may have reached without an
// acknowledgement.
func (in *Inst) Expect() (State, []State, time.Time) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.acked, append([]State(nil), in.uncertain...), in.ackedAt
}

// Late is every state sent without an answer, also those a later acknowledged write
// superseded: such a write may still land after it (a node stopped with the request unread
// applies it when it resumes, to the copy it holds, and that copy travels as the newest).
func (in *Inst) Late() []State {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]State(nil), in.late...)
}

// Home is the node the instance talks to.
func (in *Inst) Home() *Node {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.home
}

// SetHome points the instance at another node.
func (in *Inst) SetHome(n *Node) {
	in.mu.Lock()
	in.home = n
	in.mu.Unlock()
}

func (in *Inst) version() string { return fmt.Sprintf("g%d", in.gen) }

// Reply is a decoded answer.
type Reply struct {
	HTTP int
	Code int
	Data json.RawMessage
	Err  error
}

// Workload drives the instances and pollers and logs every request.
type Workload struct {
	c       *Cluster
	Insts   []*Inst
	Apps    []string
	Pollers []*Poller
	renew   time.Duration
	client  *http.Client
	churn   atomic.Bool
	// noCancel leaves cancels out of the churn.
	noCancel bool
	logMu    sync.Mutex
	log      *os.File
	enc      *json.Encoder
	reqs     atomic.Int64
	wg       sync.WaitGroup
	rng      *rand.Rand
	rngMu    sync.Mutex
}

// NewWorkload lays out `n` instances over `apps` apps, homed round-robin on the nodes.
func NewWorkload(c *Cluster, n, apps int, renew time.Duration, logPath string) (*Workload, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	w := &Workload{
		c: c, renew: renew, log: f, enc: json.NewEncoder(f),
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 0}},
		rng:    rand.New(rand.NewSource(time.Now().UnixNano())),
	}
	for a := 0; a < apps; a++ {
		w.Apps = append(w.Apps, fmt.Sprintf("faults.app%02d", a))
	}
	for i := 0; i < n; i++ {
		home := c.Nodes[i%len(c.Nodes)]
		w.Insts = append(w.Insts, &Inst{
			ID: i, App: w.Apps[i%apps], Host: fmt.Sprintf("host-%04d", i), Zone: home.Zone,
			Churn: true, home: home, status: 1,
		})
	}
	w.churn.Store(true)
	return w, nil
}

// AddInst adds an instance outside the random churn (scenarios drive it).
func (w *Workload) AddInst(app, host string, home *Node) *Inst {
	in := &Inst{ID: len(w.Insts), App: app, Host: host, Zone: home.Zone, home: home, status: 1}
	w.Insts = append(w.Insts, in)
	return in
}

// SetChurn turns random changes on or off (renews go on).
func (w *Workload) SetChurn(on bool) { w.churn.Store(on) }

func (w *Workload) rand() float64 {
	w.rngMu.Lock()
	defer w.rngMu.Unlock()
	return w.rng.Float64()
}

type logLine struct {
	T      string `json:"t"`
	Ms     int64  `json:"ms"`
	Node   string `json:"node"`
	Method string `json:"method"`
	Path   string `json:"path"`
	Params string `json:"params"`
	HTTP   int    `json:"http,omitempty"`
	Body   string `json:"body,omitempty"`
	Err    string `json:"err,omitempty"`
}

// Call sends one request to a node and logs it (workload requests) with its answer.
func (w *Workload) Call(ctx context.Context, n *Node, method, path string, params url.Values, timeout time.Duration) Reply {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u := "http://" + n.Addr + path
	var req *http.Request
	var err error
	if method == "GET" {
		req, err = http.NewRequestWithContext(ctx, "GET", u+"?"+params.Encode(), nil)
	} else {
		req, err = http.NewRequestWithContext(ctx, "POST", u, strings.NewReader(params.Encode()))
		if req != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	}
	start := time.Now()
	var r Reply
	var body []byte
	if err == nil {
		var resp *http.Response
		resp, err = w.client.Do(req)
		if err == nil {
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			r.HTTP = resp.StatusCode
		}
	}
	r.Err = err
	if err == nil {
		var env struct {
			Code int             `json:"code"`
			Data json.RawMessage `json:"data"`
		}
		if jerr := json.Unmarshal(body, &env); jerr != nil {
			r.Err = fmt.Errorf("HTTP %d, undecodable body: %.80q", r.HTTP, body)
		} else {
			r.Code, r.Data = env.Code, env.Data
		}
	}
	w.reqs.Add(1)
	if path == "/discovery/fetch/all" || path == "/discovery/fetchs" {
		// The checker's own reads, once a second per node: not part of the workload.
		return r
	}
	line := logLine{T: start.UTC().Format(time.RFC3339Nano), Ms: time.Since(start).Milliseconds(),
		Node: n.Name, Method: method, Path: path, Params: params.Encode(), HTTP: r.HTTP}
	if r.Err != nil {
		line.Err = r.Err.Error()
	}
	// Poll and fetch answers are long; the outcome is what matters in the log.
	if len(body) > 300 {
		line.Body = string(body[:300]) + "..."
	} else {
		line.Body = string(body)
	}
	w.logMu.Lock()
	_ = w.enc.Encode(line)
	w.logMu.Unlock()
	return r
}

// unknown is true when the node may or may not have applied the write (no definite answer).
func (r Reply) unknown() bool { return r.Err != nil || r.HTTP >= 500 || r.Code == -500 }

func (in *Inst) params() url.Values {
	return url.Values{"zone": {in.Zone}, "env": {env}, "appid": {in.App}, "hostname": {in.Host}}
}

// failover moves the instance to the next node after `from` (as the SDK tries another node).
func (w *Workload) failover(in *Inst, from *Node) {
	nodes := w.c.Nodes
	for i, n := range nodes {
		if n == from {
			in.SetHome(nodes[(i+1)%len(nodes)])
			return
		}
	}
}

// Register (re-)registers the instance with its current generation and status.
func (w *Workload) Register(ctx context.Context, in *Inst, newGen bool) Reply {
	in.mu.Lock()
	if newGen {
		in.gen++
	}
	p := in.params()
	p.Set("addrs", fmt.Sprintf("http://10.%d.%d.%d:8000/%s", in.ID/65536, in.ID/256%256, in.ID%256, in.version()))
	p.Set("status", fmt.Sprint(in.status))
	p.Set("version", in.version())
	p.Set("region", region)
	want := State{Present: true, Version: in.version(), Status: in.status}
	home := in.home
	in.mu.Unlock()
	r := w.Call(ctx, home, "POST", "/discovery/register", p, 3*time.Second)
	w.settle(in, home, r, want)
	return r
}

// settle records the outcome of a write that aimed at state `want`.
func (w *Workload) settle(in *Inst, home *Node, r Reply, want State) {
	in.mu.Lock()
	defer in.mu.Unlock()
	switch {
	case r.Err == nil && r.HTTP == 200 && r.Code == 0:
		in.acked, in.ackedAt, in.uncertain = want, time.Now(), nil
	case r.unknown():
		in.uncertain = append(in.uncertain, want)
		in.late = append(in.late, want)
	}
	if r.unknown() && in.home == home {
		in.mu.Unlock()
		w.failover(in, home)
		in.mu.Lock()
	}
}

// Renew heartbeats; an unknown instance registers again, as the SDK does.
func (w *Workload) Renew(ctx context.Context, in *Inst) Reply {
	home := in.Home()
	r := w.Call(ctx, home, "POST", "/discovery/renew", in.params(), 3*time.Second)
	if r.unknown() {
		w.failover(in, home)
		return r
	}
	if r.Code == -404 {
		return w.Register(ctx, in, false)
	}
	return r
}

// Cancel removes the instance.
func (w *Workload) Cancel(ctx context.Context, in *Inst) Reply {
	home := in.Home()
	r := w.Call(ctx, home, "POST", "/discovery/cancel", in.params(), 3*time.Second)
	w.settle(in, home, r, State{Present: false})
	return r
}

// SetStatus flips the instance between UP and WAITING with `set`.
func (w *Workload) SetStatus(ctx context.Context, in *Inst) Reply {
	in.mu.Lock()
	next := 3 - in.status
	in.status = next
	want := State{Present: true, Version: in.version(), Status: next}
	// A set carries no version: it changes whichever copy the node holds. After a write
	// without an answer that copy may be the version before it, or that write's.
	var bases []string
	if len(in.uncertain) > 0 && in.acked.Present {
		bases = append(bases, in.acked.Version)
		for _, u := range in.uncertain {
			bases = append(bases, u.Version)
		}
	}
	home := in.home
	in.mu.Unlock()
	p := in.params()
	p.Set("status", fmt.Sprint(next))
	r := w.Call(ctx, home, "POST", "/discovery/set", p, 3*time.Second)
	w.settle(in, home, r, want)
	if r.Err == nil && r.HTTP == 200 && r.Code == 0 {
		in.mu.Lock()
		for _, b := range bases {
			if b != "" && b != want.Version {
				in.late = append(in.late, State{Present: true, Version: b, Status: next})
			}
		}
		in.mu.Unlock()
	}
	return r
}

// Start registers every instance (bounded concurrency) and starts their loops and the pollers.
func (w *Workload) Start(ctx context.Context, pollersPerNode int, pollHold time.Duration) {
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for _, in := range w.Insts {
		wg.Add(1)
		sem <- struct{}{}
		go func(in *Inst) {
			defer wg.Done()
			defer func() { <-sem }()
			w.Register(ctx, in, true)
		}(in)
	}
	wg.Wait()
	for _, in := range w.Insts {
		w.startLoop(ctx, in)
	}
	for _, n := range w.c.Nodes {
		for k := 0; k < pollersPerNode; k++ {
			p := &Poller{Name: fmt.Sprintf("poller-%s-%d", n.Name, k), Node: n, w: w, hold: pollHold,
				seen: map[string]*PollView{}}
			w.Pollers = append(w.Pollers, p)
			w.wg.Add(1)
			go func() { defer w.wg.Done(); p.run(ctx) }()
		}
	}
}

// startLoop runs the instance's renew/churn ticks until ctx ends.
func (w *Workload) startLoop(ctx context.Context, in *Inst) {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		// Spread the ticks over the interval.
		t := time.NewTimer(time.Duration(w.rand() * float64(w.renew)))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			w.tick(ctx, in)
			t.Reset(w.renew + time.Duration((w.rand()-0.5)*0.2*float64(w.renew)))
		}
	}()
}

func (w *Workload) tick(ctx context.Context, in *Inst) {
	in.mu.Lock()
	away := in.awayTicks
	present := in.acked.Present || len(in.uncertain) > 0
	churn := in.Churn && w.churn.Load()
	in.mu.Unlock()
	if away > 0 || !present && in.Churn {
		if !churn {
			return // stays cancelled while the cluster settles
		}
		in.mu.Lock()
		in.awayTicks--
		back := in.awayTicks <= 0
		in.mu.Unlock()
		if back {
			w.Register(ctx, in, true)
		}
		return
	}
	if churn {
		x := w.rand()
		switch {
		case x < 0.03 && !w.noCancel:
			if r := w.Cancel(ctx, in); r.Err == nil && r.Code == 0 {
				in.mu.Lock()
				in.awayTicks = 1 + int(w.rand()*3)
				in.mu.Unlock()
				return
			}
		case x < 0.07:
			w.Register(ctx, in, true)
		case x < 0.10:
			w.SetStatus(ctx, in)
		}
	}
	// A client renews on its own timer whatever else it does, so the renews a node counts
	// are the guard's two per window while nothing is wrong.
	w.Renew(ctx, in)
}

// Wait ends the loops (ctx must be done), bounded, and closes the log.
func (w *Workload) Wait() {
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		fmt.Println("workload: some loops did not end within 15s of the end")
	}
	w.logMu.Lock()
	w.log.Close()
	w.logMu.Unlock()
}

// ---- pollers ------------------------------------------------------------------------------

// PollView is what a poller knows of one app: the app's latest_timestamp and its UP instances.
type PollView struct {
	Latest    int64
	Instances map[string]string // hostname -> version
}

// Poller long-polls every workload app on one node.
type Poller struct {
	Name string
	Node *Node
	w    *Workload
	hold time.Duration

	mu        sync.Mutex
	seen      map[string]*PollView
	Backwards []string // latest_timestamp of an app went down between two answers
	Answers   int
	Errors    int
}

type instanceJSON struct {
	Zone     string `json:"zone"`
	Appid    string `json:"appid"`
	Hostname string `json:"hostname"`
	Version  string `json:"version"`
	Status   int    `json:"status"`
}

type infoJSON struct {
	Instances map[string][]instanceJSON `json:"instances"`
	Latest    int64                     `json:"latest_timestamp"`
}

// View is the poller's current view of an app.
func (p *Poller) View(app string) PollView {
	p.mu.Lock()
	defer p.mu.Unlock()
	if v, ok := p.seen[app]; ok {
		return *v
	}
	return PollView{}
}

func (p *Poller) run(ctx context.Context) {
	apps := p.w.Apps
	for i := 0; i < 1_000_000 && ctx.Err() == nil; i++ {
		params := url.Values{"env": {env}, "hostname": {p.Name}}
		p.mu.Lock()
		for _, a := range apps {
			params.Add("appid", a)
			var ts int64
			if v, ok := p.seen[a]; ok {
				ts = v.Latest
			}
			params.Add("latest_timestamp", fmt.Sprint(ts))
		}
		p.mu.Unlock()
		r := p.w.Call(ctx, p.Node, "GET", "/discovery/polls", params, p.hold+5*time.Second)
		if r.Err != nil || r.HTTP != 200 || (r.Code != 0 && r.Code != -304) {
			p.mu.Lock()
			p.Errors++
			p.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(300 * time.Millisecond):
			}
			continue
		}
		if r.Code != 0 {
			continue
		}
		var data map[string]infoJSON
		if err := json.Unmarshal(r.Data, &data); err != nil {
			continue
		}
		p.mu.Lock()
		p.Answers++
		for app, info := range data {
			prev, ok := p.seen[app]
			if ok && info.Latest < prev.Latest {
				p.Backwards = append(p.Backwards, fmt.Sprintf("%s %s: %d after %d (%.1fs back)",
					time.Now().Format("15:04:05.000"), app, info.Latest, prev.Latest,
					float64(prev.Latest-info.Latest)/1e9))
			}
			v := &PollView{Latest: info.Latest, Instances: map[string]string{}}
			for _, list := range info.Instances {
				for _, in := range list {
					v.Instances[in.Hostname] = in.Version
				}
			}
			p.seen[app] = v
		}
		p.mu.Unlock()
	}
}
