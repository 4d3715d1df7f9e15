// Command faults runs the fault suite against real discovery nodes: it starts a cluster (each
// node under its own uid on its own loopback address), steers every peer connection through a
// fault proxy with nftables, runs a workload of registering, renewing and churning instances
// and long-polling consumers, injects one fault after another (cuts, delay, resets, 413s,
// short batch answers, SIGKILL, SIGSTOP, clock skew), and checks what the cluster holds after
// each heal and at the end. It prints one line per check and ends with "N passed, M failed".
//
// Run through run.sh, which builds the binaries and installs nftables and faketime.

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Profile sizes the run.
type Profile struct {
	Name      string
	Instances int
	Apps      int
	Pollers   int           // per node
	Fault     time.Duration // how long a link fault lasts
	Cut       time.Duration // how long a partition lasts
	Down      time.Duration // SIGKILL to restart
	Pause     time.Duration // SIGSTOP to SIGCONT
	Baseline  time.Duration
	Settle    time.Duration // bound on convergence after a heal
}

var (
	short = Profile{Name: "short", Instances: 200, Apps: 10, Pollers: 2, Fault: 8 * time.Second,
		Cut: 15 * time.Second, Down: 8 * time.Second, Pause: 15 * time.Second, Baseline: 6 * time.Second,
		Settle: 30 * time.Second}
	long = Profile{Name: "long", Instances: 400, Apps: 16, Pollers: 3, Fault: 90 * time.Second,
		Cut: 180 * time.Second, Down: 60 * time.Second, Pause: 60 * time.Second, Baseline: 60 * time.Second,
		Settle: 120 * time.Second}
	// Shortened [registry] timings, in the original's proportions; the workload renews as
	// often as the guard expects (two renews per eviction window), as clients of the
	// original do (30 s renews, 60 s window), so the guard sees a loss of renews as it would.
	timing = Timing{PollHold: 8 * time.Second, EvictInterval: 6 * time.Second, EvictAfter: 9 * time.Second,
		EvictAfterProtected: 360 * time.Second, GuardRecount: 30 * time.Second,
		ProtectTimeout: 10 * time.Second, SelfRenew: 3 * time.Second}
	renewEvery = 3 * time.Second
	// How often the Go original renews its own registration (fixed in its code).
	goRenewEvery = 30 * time.Second
)

// Suite is one run: cluster, proxy, workload, sampler, results.
type Suite struct {
	ctx     context.Context
	wctx    context.Context // the workload's: ends before the nodes are stopped
	c       *Cluster
	p       *Proxy
	w       *Workload
	s       *Sampler
	r       *Results
	prof    Profile
	mixed   bool
	started map[string]time.Time // last (re)start of each node
	// diverged holds instances an earlier phase left different between nodes: later phases
	// leave them out (they would fail every later phase for the same cause); the final
	// checks judge everything.
	diverged map[string]bool
	settle   []string // convergence figures, for the summary
}

func main() {
	longRun := flag.Bool("long", false, "run each fault for minutes")
	mixed := flag.Bool("mixed", false, "node n3 runs the Go original")
	dir := flag.String("dir", "", "work directory for configs, logs and the request log")
	ours := flag.String("ours", "", "our discovery binary")
	goBin := flag.String("go", "", "the Go original's binary (for -mixed)")
	only := flag.String("only", "", "comma-separated phase names to run (default: all)")
	uidBase := flag.Int("uid-base", 47000, "node i runs as uid uid-base+i")
	flag.Parse()
	if *dir == "" || *ours == "" || (*mixed && *goBin == "") {
		fmt.Fprintln(os.Stderr, "usage: faults -dir DIR -ours BIN [-mixed -go BIN] [-long]")
		os.Exit(2)
	}
	for _, p := range []*string{dir, ours, goBin} {
		if *p != "" {
			abs, err := filepath.Abs(*p)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
			*p = abs
		}
	}
	prof := short
	if *longRun {
		prof = long
	}
	r := &Results{}
	ok := run(prof, *mixed, *dir, *ours, *goBin, *only, *uidBase, r)
	p, f := r.Counts()
	if !ok && f == 0 {
		f = 1
	}
	fmt.Printf("%d passed, %d failed\n", p, f)
	if f > 0 {
		os.Exit(1)
	}
}

func run(prof Profile, mixed bool, dir, ours, goBin, only string, uidBase int, r *Results) bool {
	// The Go node keeps its fixed timings: what it repairs (its own registration, a register
	// it failed to forward) waits for its next renew, every 30 s.
	if mixed && prof.Settle < goRenewEvery+15*time.Second {
		prof.Settle = goRenewEvery + 15*time.Second
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		r.Check("setup", false, "%v", err)
		return false
	}
	goAt, skewAt := 0, 3
	if mixed {
		goAt, skewAt = 3, 2
	}
	c, err := NewCluster(dir, ours, goBin, 3, 2, goAt, skewAt, timing, uidBase)
	if err != nil {
		r.Check("setup", false, "%v", err)
		return false
	}
	for _, n := range c.Nodes {
		if !free(n.Addr) {
			r.Check("setup", false, "%s is in use: another run of the suite?", n.Addr)
			return false
		}
	}
	defer NetTeardown()
	if err := c.NetSetup(); err != nil {
		r.Check("setup", false, "nftables: %v", err)
		return false
	}
	p, err := StartProxy(c.Nodes)
	if err != nil {
		r.Check("setup", false, "%v", err)
		return false
	}
	defer p.Close()
	defer c.StopAll()
	s := &Suite{ctx: ctx, c: c, p: p, r: r, prof: prof, mixed: mixed, s: &Sampler{},
		started: map[string]time.Time{}, diverged: map[string]bool{}}
	t0 := time.Now()
	for _, n := range c.Nodes {
		if err := c.Start(n); err != nil {
			r.Check("setup", false, "%v\n%s", err, n.LogTail(20))
			return false
		}
		s.started[n.Name] = time.Now()
	}
	w, err := NewWorkload(c, prof.Instances, prof.Apps, renewEvery, filepath.Join(dir, "requests.jsonl"))
	if err != nil {
		r.Check("setup", false, "%v", err)
		return false
	}
	s.w = w
	// Cancels lost in a fault last on a Go node until its fixed 90 s eviction: too long for
	// this run, so the mixed cluster churns without them.
	w.noCancel = mixed
	if !s.waitPeers() {
		return false
	}
	fmt.Printf("== cluster up: %s (%s)\n", names(c.Nodes), time.Since(t0).Round(time.Millisecond))
	wctx, wstop := context.WithCancel(ctx)
	s.wctx = wctx
	w.Start(wctx, prof.Pollers, timing.PollHold)
	go s.s.Run(wctx, w)
	defer func() {
		wstop()
		w.Wait()
		fmt.Printf("== workload: %d requests logged in %s\n", w.reqs.Load(), filepath.Join(dir, "requests.jsonl"))
	}()
	fmt.Printf("== workload: %d instances over %d apps, renew every %s, %d pollers per node\n",
		prof.Instances, prof.Apps, renewEvery, prof.Pollers)

	want := map[string]bool{}
	for _, x := range strings.Split(only, ",") {
		if x != "" {
			want[x] = true
		}
	}
	for _, ph := range s.phases() {
		if len(want) > 0 && !want[ph.name] {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		s.runPhase(ph)
	}
	if ctx.Err() == nil {
		s.final()
	}
	for _, n := range c.Nodes {
		if n.Died() {
			fmt.Printf("---- %s log tail\n%s\n", n.Name, n.LogTail(30))
		}
	}
	fmt.Println("== convergence after each heal")
	for _, line := range s.settle {
		fmt.Println("   " + line)
	}
	return ctx.Err() == nil
}

func names(ns []*Node) string {
	var out []string
	for _, n := range ns {
		out = append(out, fmt.Sprintf("%s %s %s", n.Name, n.Zone, n.Addr))
	}
	return strings.Join(out, ", ")
}

func rawGet(ctx context.Context, u string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// sleep waits d unless the run is interrupted.
func (s *Suite) sleep(d time.Duration) {
	select {
	case <-s.ctx.Done():
	case <-time.After(d):
	}
}

// waitPeers waits until every node holds every node's infra.discovery registration.
func (s *Suite) waitPeers() bool {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && s.ctx.Err() == nil {
		all := true
		for _, n := range s.c.Nodes {
			reg, err := s.w.FetchAll(s.ctx, n)
			if err != nil {
				all = false
				break
			}
			count := 0
			for _, in := range reg {
				if in["appid"] == "infra.discovery" {
					count++
				}
			}
			if count < len(s.c.Nodes) {
				all = false
				break
			}
		}
		if all {
			return true
		}
		s.sleep(200 * time.Millisecond)
	}
	s.r.Check("setup", false, "nodes did not learn each other within 30s")
	return false
}

// ---- phases ---------------------------------------------------------------------------------

// Drops is what a phase expects of the nodes' dropped-op counters.
type Drops int

const (
	DropsAny      Drops = iota // not judged
	DropsNone                  // no node dropped an op
	DropsSome                  // each listed sender retried ops or counted them dropped
	DropsWithheld              // senders resent or counted at least the ops the proxy kept from the peer
)

// Phase is one fault: what it does, how long, and what its counters should show.
type Phase struct {
	name    string
	what    string
	fault   func() // applies the fault (may block for the fault's duration)
	heal    func()
	hold    time.Duration
	drops   Drops
	senders []*Node // for DropsSome / DropsWithheld
	after   func()  // scenario checks after convergence
}

func (s *Suite) node(i int) *Node { return s.c.Nodes[i-1] }

func (s *Suite) phases() []Phase {
	c, p, prof := s.c, s.p, s.prof
	n1, n2, n3, n4, n5 := s.node(1), s.node(2), s.node(3), s.node(4), s.node(5)
	z1, z2 := c.zone("sh001"), c.zone("sh002")
	must := func(err error) {
		if err != nil {
			s.r.Check("fault injection", false, "%v", err)
		}
	}
	heal := func() { must(c.Heal()); p.Clear() }
	zonePartition := Phase{name: "zone-partition", what: "sh001 and sh002 cut apart both ways",
		fault: func() { must(c.Partition(z1, z2)) }, heal: heal, hold: prof.Cut, drops: DropsSome, senders: c.Ours()}
	var out []Phase
	out = append(out,
		Phase{name: "baseline", what: "no fault", fault: func() {}, heal: heal, hold: prof.Baseline, drops: DropsNone},
		Phase{name: "one-way", what: fmt.Sprintf("%s cannot reach %s (the other way works)", n1.Name, n2.Name),
			fault: func() { must(c.Cut(n1, n2)) }, heal: heal, hold: prof.Fault, drops: DropsSome, senders: []*Node{n1}},
	)
	if !s.mixed {
		out = append(out, Phase{name: "set-after-miss",
			what:  fmt.Sprintf("%s misses a re-register (requests from %s refused for 1 s), then gets the set that follows it", n2.Name, n1.Name),
			fault: func() { s.setAfterMiss(n1, n2) }, heal: heal})
	}
	if s.mixed {
		// The proxy's faults of our batch protocol do not apply to a Go node; cut the Go node's
		// link to n1 instead.
		out[1].what = fmt.Sprintf("%s cannot reach %s (the other way works)", n3.Name, n1.Name)
		out[1].fault = func() { must(c.Cut(n3, n1)) }
		out[1].drops, out[1].senders = DropsAny, nil
	} else {
		out = append(out,
			Phase{name: "delay", what: fmt.Sprintf("400 ms added to every request into %s (below the %s peer timeout)", n2.Name, peerTimeout),
				fault: func() { p.Set(nil, n2, Delay, 400*time.Millisecond) }, heal: heal, hold: prof.Fault, drops: DropsNone},
			Phase{name: "delay-timeout", what: fmt.Sprintf("%s added to every request into %s (past the %s peer timeout)", peerTimeout+time.Second/2, n5.Name, peerTimeout),
				fault: func() { p.Set(nil, n5, Delay, peerTimeout+time.Second/2) }, heal: heal, hold: prof.Fault, drops: DropsSome, senders: []*Node{n4}},
			Phase{name: "reset", what: fmt.Sprintf("connections into %s reset mid-body (request half read, or answer half sent)", n3.Name),
				fault: func() { p.Set(nil, n3, Reset, 0) }, heal: heal, hold: prof.Fault, drops: DropsSome, senders: []*Node{n1, n2}},
			Phase{name: "batch-413", what: fmt.Sprintf("%s's batches answered 413 (ops must go one by one)", n1.Name),
				fault: func() { p.Set(nil, n1, Batch413, 0) }, heal: heal, hold: prof.Fault, drops: DropsNone},
			Phase{name: "short-batch", what: fmt.Sprintf("only the first half of each batch into %s delivered, its short answer returned", n2.Name),
				fault: func() { p.Set(nil, n2, ShortBatch, 0) }, heal: heal, hold: prof.Fault, drops: DropsWithheld, senders: []*Node{n1, n3}},
		)
	}
	victim := n2
	if s.mixed {
		victim = n3 // the Go node
	}
	out = append(out,
		Phase{name: "kill", what: fmt.Sprintf("SIGKILL %s, restart after %s (its start-up sync held 2 s each way by the proxy)", victim.Name, prof.Down),
			fault: func() { s.killRestart(victim) }, heal: heal, hold: 0, drops: DropsSome, senders: oursExcept(c.zone(victim.Zone), victim)},
		Phase{name: "pause", what: fmt.Sprintf("SIGSTOP %s for %s, then SIGCONT", n4.Name, prof.Pause),
			fault: func() {
				n4.Signal(syscall.SIGSTOP)
				s.sleep(prof.Pause)
				n4.Signal(syscall.SIGCONT)
			}, heal: heal, hold: 0, drops: DropsSome, senders: oursExcept(c.zone(n4.Zone), n4)},
	)
	skewed := n3
	if s.mixed {
		skewed = n2
	}
	// The clock goes back to true time at the heal; two eviction rounds after that stay in
	// the phase, so what a clock jump does to eviction is judged here.
	unskew := func() {
		heal()
		must(skewed.SetSkew(0))
		s.sleep(2 * timing.EvictInterval)
	}
	out = append(out,
		Phase{name: "skew-ahead", what: fmt.Sprintf("%s's clock 2 min ahead; instances registered through it, then re-registered through %s", skewed.Name, n1.Name),
			fault: func() { s.skewScenario("ahead", skewed, 120*time.Second, skewed, n1) }, heal: unskew},
		Phase{name: "skew-behind", what: fmt.Sprintf("%s's clock 2 min behind; instances registered through %s, then re-registered through it", skewed.Name, n1.Name),
			fault: func() { s.skewScenario("behind", skewed, -120*time.Second, n1, skewed) }, heal: unskew},
	)
	// Last: changes made in one zone while the zones are apart are not repaired by renews
	// (see docs/RELIABILITY.md), so what it leaves behind would blur every later phase.
	return append(out, zonePartition)
}

func oursExcept(all []*Node, skip *Node) []*Node {
	var out []*Node
	for _, n := range all {
		if n != skip && !n.Go {
			out = append(out, n)
		}
	}
	return out
}

// runPhase applies one fault while the workload runs, heals, measures convergence and checks.
func (s *Suite) runPhase(ph Phase) {
	fmt.Printf("== %s: %s\n", ph.name, ph.what)
	before := map[string]map[string]int64{}
	for _, n := range s.c.Nodes {
		before[n.Name] = s.w.Metrics(s.ctx, n)
	}
	withheld0 := map[string]int64{}
	for _, n := range s.c.Nodes {
		withheld0[n.Name] = s.p.Withheld(n)
	}
	start := time.Now()
	proxy0 := s.p.Totals()
	ph.fault()
	s.sleep(ph.hold)
	ph.heal()
	proxy1 := s.p.Totals()
	fmt.Printf("   between nodes, fault to heal (%s): %d requests carrying %d ops, %d connections reset, %d ops kept from peers\n",
		time.Since(start).Round(100*time.Millisecond), proxy1[0]-proxy0[0], proxy1[1]-proxy0[1], proxy1[2]-proxy0[2], proxy1[3]-proxy0[3])
	s.w.SetChurn(false)
	took, ok, diff, keys := s.converge(s.prof.Settle, s.diverged)
	fig := fmt.Sprintf("%-15s %s", ph.name, took.Round(100*time.Millisecond))
	if !ok {
		fig = fmt.Sprintf("%-15s not within %s (%d instances differ)", ph.name, s.prof.Settle, len(keys))
	}
	s.settle = append(s.settle, fig)
	earlier := ""
	if len(s.diverged) > 0 {
		earlier = fmt.Sprintf(" (%d instances left different by earlier phases not judged here)", len(s.diverged))
	}
	s.r.Check(ph.name+": converged after heal", ok,
		"fetch/all identical on every node (renew_timestamp, up_timestamp ignored) %s after the heal%s%s",
		took.Round(100*time.Millisecond), earlier, ifNot(ok, "; still: "+diff))
	for _, k := range keys {
		s.diverged[k] = true
	}
	s.checkEvictions(ph.name, start, time.Now())
	after := map[string]map[string]int64{}
	for _, n := range s.c.Nodes {
		after[n.Name] = s.w.Metrics(s.ctx, n)
	}
	s.checkDrops(ph, before, after, withheld0)
	if ph.after != nil {
		ph.after()
	}
	s.w.SetChurn(true)
}

func ifNot(ok bool, s string) string {
	if ok {
		return ""
	}
	return s
}

// converge waits until every running node's fetch/all is the same (renew and up timestamps
// aside) and reports how long it took.
func (s *Suite) converge(bound time.Duration, except map[string]bool) (time.Duration, bool, string, []string) {
	start := time.Now()
	var last string
	var keys []string
	for time.Since(start) < bound && s.ctx.Err() == nil {
		regs, names, err := s.fetchAll()
		if err == nil {
			last, keys = DiffExcept(names, regs, except, s.ignored("renew_timestamp", "up_timestamp")...)
			if last == "" {
				return time.Since(start), true, "", nil
			}
		} else {
			last, keys = err.Error(), nil
		}
		s.sleep(500 * time.Millisecond)
	}
	return time.Since(start), false, last, keys
}

// ignored is the fields comparisons skip: `fields`, and with a Go node the ones it sets itself
// on every replicated register (the original takes reg_timestamp and latest_timestamp from its
// own clock).
func (s *Suite) ignored(fields ...string) []string {
	if s.mixed {
		fields = append(fields, "reg_timestamp", "latest_timestamp")
	}
	return fields
}

func (s *Suite) fetchAll() ([]Registry, []string, error) {
	var regs []Registry
	var names []string
	for _, n := range s.c.Nodes {
		reg, err := s.w.FetchAll(s.ctx, n)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %v", n.Name, err)
		}
		regs = append(regs, reg)
		names = append(names, n.Name)
	}
	return regs, names, nil
}

// massEviction is the share of the registered instances under which a node has evicted too
// many: one eviction round may take 15 %, churn moves the count by a few per cent.
const massEviction = 0.90

// checkEvictions: no node lost a large share of the instances the workload holds registered
// (self-preservation must hold on every side of a fault).
func (s *Suite) checkEvictions(phase string, from, to time.Time) {
	var worst []string
	ok := true
	for _, n := range s.c.Nodes {
		min, minAt := 1e9, time.Time{}
		for _, smp := range s.s.Between(n.Name, from, to) {
			if smp.At.Sub(s.started[n.Name]) < 5*time.Second {
				continue // a node starting up is still syncing
			}
			live := s.liveAt()
			if live == 0 {
				continue
			}
			ratio := float64(smp.Instances) / float64(live)
			if ratio < min {
				min, minAt = ratio, smp.At
			}
		}
		if min == 1e9 {
			continue
		}
		worst = append(worst, fmt.Sprintf("%s %.0f%%", n.Name, min*100))
		if min < massEviction {
			ok = false
			worst[len(worst)-1] += " at " + minAt.Format("15:04:05")
		}
	}
	s.r.Check(phase+": no mass eviction", ok,
		"lowest share of the registered instances each node held: %s", strings.Join(worst, ", "))
}

// liveAt is how many instances of the sampled apps are registered as far as clients know now
// (scenario instances live in apps of their own and are not sampled).
func (s *Suite) liveAt() int {
	apps := map[string]bool{}
	for _, a := range s.w.Apps {
		apps[a] = true
	}
	n := 0
	for _, in := range s.w.Insts {
		if st, _, _ := in.Expect(); st.Present && apps[in.App] {
			n++
		}
	}
	return n
}

func (s *Suite) checkDrops(ph Phase, before, after map[string]map[string]int64, withheld0 map[string]int64) {
	delta := func(n *Node, key string) int64 {
		b, a := before[n.Name][key], after[n.Name][key]
		if a < b { // restarted: the counter started again
			return a
		}
		return a - b
	}
	dropped := func(n *Node) int64 { return delta(n, "discovery_replication_dropped_total") }
	// An op that did not get through is sent again (retried, or rerouted to another node of
	// the zone) or given up (dropped); either way the sender counts it.
	noticed := func(n *Node) int64 { return delta(n, "discovery_replication_retried_total") + dropped(n) }
	var parts []string
	for _, n := range s.c.Ours() {
		parts = append(parts, fmt.Sprintf("%s retried %d dropped %d", n.Name,
			delta(n, "discovery_replication_retried_total"), dropped(n)))
	}
	seen := strings.Join(parts, ", ")
	switch ph.drops {
	case DropsNone:
		ok := true
		for _, n := range s.c.Ours() {
			if dropped(n) != 0 {
				ok = false
			}
		}
		s.r.Check(ph.name+": dropped-op counters", ok, "expected no drops; %s", seen)
	case DropsSome:
		ok := true
		for _, n := range ph.senders {
			if noticed(n) == 0 {
				ok = false
			}
		}
		s.r.Check(ph.name+": dropped-op counters", ok, "ops that could not reach a peer retried or counted dropped by %s; %s",
			names1(ph.senders), seen)
	case DropsWithheld:
		var kept, counted int64
		var detail []string
		for _, n := range ph.senders {
			k := s.p.Withheld(n) - withheld0[n.Name]
			kept += k
			counted += noticed(n)
			detail = append(detail, fmt.Sprintf("%s: %d ops kept from the peer, %d resent or counted dropped", n.Name, k, noticed(n)))
		}
		s.r.Check(ph.name+": dropped-op counters", kept > 0 && counted >= kept,
			"every op a peer never got is resent or counted dropped; %s", strings.Join(detail, "; "))
	}
}

func names1(ns []*Node) string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Name)
	}
	return strings.Join(out, ",")
}

// killRestart SIGKILLs a node, keeps it down, and restarts it with its start-up sync held up
// by the proxy, while one instance registers and renews through it; its renew_timestamp must
// never go back (the sync must not replace what the node holds with an older copy).
func (s *Suite) killRestart(n *Node) {
	n.Kill(syscall.SIGKILL)
	s.sleep(s.prof.Down)
	s.p.Set(n, nil, SlowSync, 2*time.Second)
	boot := s.w.AddInst("faults.boot", "boot-"+n.Name, n)
	if err := s.c.Start(n); err != nil {
		s.r.Check("kill: restart", false, "%v\n%s", err, n.LogTail(20))
		return
	}
	s.started[n.Name] = time.Now()
	s.r.Check("kill: restart", true, "%s answers again", n.Name)
	if n.Go {
		s.w.Register(s.ctx, boot, true)
		s.w.startLoop(s.wctx, boot)
		return
	}
	s.w.Register(s.ctx, boot, true)
	key := fmt.Sprintf("%s/%s/%s/%s", env, boot.App, boot.Zone, boot.Host)
	var prev int64
	var back []string
	// The sync lands about 4 s after the start (2 s each way); watch well past that.
	end := time.Now().Add(12 * time.Second)
	lastRenew := time.Now()
	for i := 0; i < 400 && time.Now().Before(end); i++ {
		if time.Since(lastRenew) > 300*time.Millisecond {
			s.w.Renew(s.ctx, boot)
			lastRenew = time.Now()
		}
		reg, err := s.w.FetchAll(s.ctx, n)
		if err == nil {
			if in, ok := reg[key]; ok {
				ts := tsField(in, "renew_timestamp")
				if ts < prev {
					back = append(back, fmt.Sprintf("%.2fs back at %s", float64(prev-ts)/1e9, time.Now().Format("15:04:05.000")))
				}
				if ts > prev {
					prev = ts
				}
			}
		}
		s.sleep(100 * time.Millisecond)
	}
	s.w.startLoop(s.wctx, boot)
	s.r.Check("kill: start-up sync keeps the node's own newer copy", len(back) == 0 && prev > 0,
		"renew_timestamp of %s on %s while its sync was in flight%s",
		boot.Host, n.Name, ifNot(len(back) == 0, " went backwards: "+strings.Join(back, ", ")+
			" (a peer's copy with an equal dirty_timestamp replaced the node's own)"))
}

// setAfterMiss: `to` holds version g1 of an instance, misses its re-register (g2) through
// `from` while the link is cut, then receives the `set` made after the heal. It must end with
// g2: the set must not bring the stale copy's dirty_timestamp up to date and so hide the
// missed register from the renews that would repair it.
func (s *Suite) setAfterMiss(from, to *Node) {
	in := s.w.AddInst("faults.stale", "set-after-miss", from)
	key := fmt.Sprintf("%s/%s/%s/%s", env, in.App, in.Zone, in.Host)
	holds := func(n *Node) map[string]any {
		reg, err := s.w.FetchAll(s.ctx, n)
		if err != nil {
			return nil
		}
		return reg[key]
	}
	s.w.Register(s.ctx, in, true)
	for i := 0; i < 50 && versionOf(holds(to)) != "g1"; i++ {
		s.sleep(100 * time.Millisecond)
	}
	// The proxy refuses every request on the link for a moment: the call and its retry fail
	// and the op is dropped for good. (An nftables cut would not do: the kernel retransmits
	// the request it had sent once the link is back, and the peer gets it late.)
	s.p.Set(from, to, Refuse, 0)
	s.w.Register(s.ctx, in, true) // g2, acknowledged by `from`, never reaches `to`
	s.sleep(time.Second)
	s.p.Clear()
	s.w.SetStatus(s.ctx, in) // status 2, on g2
	setAt := time.Now()
	got := holds(to)
	for i := 0; i < 80 && fmt.Sprint(got["status"]) != "2"; i++ {
		s.sleep(100 * time.Millisecond)
		got = holds(to)
	}
	arrived := fmt.Sprintf("the set reached %s after %s (it then held %v/status %v)", to.Name,
		time.Since(setAt).Round(100*time.Millisecond), versionOf(got), statusOf(got))
	if fmt.Sprint(got["status"]) != "2" {
		arrived = fmt.Sprintf("the set did not reach %s within 8 s", to.Name)
	}
	// From here the client renews through `from` every second. Not before: a renew reaching
	// `to` ahead of the set would carry g2's dirty_timestamp and repair the copy (-404 and a
	// register); the scenario is the set arriving first, as it does when a
	// client sets its status right after re-registering. `to` last heard of the instance
	// with g1, a few seconds ago: well inside evictAfter.
	renewing, stopRenew := context.WithCancel(s.wctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		for i := 0; i < 60 && renewing.Err() == nil; i++ {
			s.w.Renew(renewing, in)
			select {
			case <-renewing.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	defer func() { stopRenew(); <-renewed; s.w.startLoop(s.wctx, in) }()
	s.sleep(2 * renewEvery) // renews would repair a copy they can tell is stale
	got = holds(to)
	want, _, _ := in.Expect()
	ok := got != nil && got["version"] == want.Version && fmt.Sprint(got["status"]) == fmt.Sprint(want.Status)
	s.r.Check("set-after-miss: the set does not hide the missed register", ok,
		"%s; after two more renew intervals %s holds %v/status %v, %s acknowledged %s%s", arrived, to.Name, versionOf(got),
		statusOf(got), from.Name, want, ifNot(ok, " (the replicated set gave the stale copy the new dirty_timestamp, so renews see nothing to repair)"))
}

func statusOf(m map[string]any) any {
	if m == nil {
		return "-"
	}
	return m["status"]
}

// skewScenario moves `skewed`'s clock by d, registers instances through `first`, then
// re-registers them (new version and addrs) through `second`: the second write must win on
// every node.
func (s *Suite) skewScenario(label string, skewed *Node, d time.Duration, first, second *Node) {
	if err := skewed.SetSkew(d); err != nil {
		s.r.Check("skew-"+label+": clock moved", false, "%v", err)
		return
	}
	// The node's clock has moved once a renew through it carries the moved time. (Not the
	// dirty_timestamp of a register: a write never takes a version below the one it replaces,
	// so a clock moved back does not show there.)
	probe := s.w.AddInst("faults.skewprobe", "probe-"+label, skewed)
	s.w.Register(s.ctx, probe, true)
	moved := false
	for i := 0; i < 20 && !moved; i++ {
		s.w.Renew(s.ctx, probe)
		reg, err := s.w.FetchAll(s.ctx, skewed)
		if err == nil {
			if in, ok := reg[fmt.Sprintf("%s/%s/%s/%s", env, probe.App, probe.Zone, probe.Host)]; ok {
				off := time.Duration(tsField(in, "renew_timestamp") - time.Now().UnixNano())
				moved = (d > 0 && off > d/2) || (d < 0 && off < d/2)
			}
		}
		if !moved {
			s.sleep(250 * time.Millisecond)
		}
	}
	s.w.startLoop(s.wctx, probe)
	if !s.r.Check("skew-"+label+": clock moved", moved, "%s's wall clock %+v", skewed.Name, d) {
		return
	}
	var insts []*Inst
	for k := 0; k < 10; k++ {
		in := s.w.AddInst("faults.skew", fmt.Sprintf("%s-%d", label, k), first)
		s.w.Register(s.ctx, in, true)
		insts = append(insts, in)
	}
	// Let the first version reach every node before the second write.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && s.ctx.Err() == nil {
		regs, _, err := s.fetchAll()
		if err == nil && allHave(regs, insts, "g1") {
			break
		}
		s.sleep(200 * time.Millisecond)
	}
	for _, in := range insts {
		in.SetHome(second) // same instance (zone, hostname), another node
		s.w.Register(s.ctx, in, true)
		s.w.startLoop(s.wctx, in)
	}
	// Two renew intervals: renews replicate and conflicts settle.
	s.sleep(2 * renewEvery)
	regs, names, err := s.fetchAll()
	if err != nil {
		s.r.Check("skew-"+label+": re-register wins everywhere", false, "%v", err)
		return
	}
	var wrong []string
	for i, reg := range regs {
		bad := 0
		var example string
		for _, in := range insts {
			want, _, _ := in.Expect()
			got := reg[fmt.Sprintf("%s/%s/%s/%s", env, in.App, in.Zone, in.Host)]
			if got == nil || got["version"] != want.Version {
				bad++
				if example == "" {
					example = fmt.Sprintf("%s holds %v, %s was acknowledged", in.Host, versionOf(got), want.Version)
				}
			}
		}
		if bad > 0 {
			wrong = append(wrong, fmt.Sprintf("%s: %d/%d wrong (%s)", names[i], bad, len(insts), example))
		}
	}
	s.r.Check("skew-"+label+": re-register wins everywhere", len(wrong) == 0,
		"10 instances registered through %s then re-registered through %s (clock of %s %+v)%s",
		first.Name, second.Name, skewed.Name, d, ifNot(len(wrong) == 0, "; "+strings.Join(wrong, "; ")))
}

func versionOf(m map[string]any) any {
	if m == nil {
		return "nothing"
	}
	return m["version"]
}

func allHave(regs []Registry, insts []*Inst, version string) bool {
	for _, reg := range regs {
		for _, in := range insts {
			got := reg[fmt.Sprintf("%s/%s/%s/%s", env, in.App, in.Zone, in.Host)]
			if got == nil || got["version"] != version {
				return false
			}
		}
	}
	return true
}

// ---- final checks -------------------------------------------------------------------------

func (s *Suite) final() {
	fmt.Println("== final: churn stopped; one renew interval and one eviction window")
	s.w.SetChurn(false)
	s.sleep(renewEvery + timing.EvictAfter + timing.EvictInterval)
	_, ok, diff, _ := s.converge(s.prof.Settle, nil)
	regs, names, err := s.fetchAll()
	if err != nil {
		s.r.Check("final: fetch/all", false, "%v", err)
		return
	}
	s.r.Check("final: fetch/all identical (renew_timestamp and up_timestamp ignored)", ok, "%s", orIdentical(diff))
	// The Go original neither sends a peer the up_timestamp of a write nor keeps the one it is
	// sent, and a copy's up_timestamp depends on the copy it replaced: once writes pass through
	// a Go node, up_timestamp differs between nodes (between Go nodes too). Judged without one.
	if !s.mixed {
		strict := Diff(names, regs, "renew_timestamp")
		s.r.Check("final: fetch/all identical (renew_timestamp ignored)", strict == "", "%s", orIdentical(strict))
		s.checkUpTimestamps(regs, names)
	}
	s.checkAcked(regs, names)
	s.checkPollers()
	s.checkBackwards()
	var dead []string
	for _, n := range s.c.Nodes {
		if !n.Running() {
			dead = append(dead, n.Name)
		}
	}
	s.r.Check("final: every node still running", len(dead) == 0, "%s", orNone(dead))
}

func orIdentical(d string) string {
	if d == "" {
		return "identical"
	}
	return d
}

func orNone(x []string) string {
	if len(x) == 0 {
		return "none down"
	}
	return strings.Join(x, ", ") + " exited"
}

// checkUpTimestamps: an instance's up_timestamp is the same on every node.
func (s *Suite) checkUpTimestamps(regs []Registry, names []string) {
	differ, total := 0, 0
	var example string
	for k, m := range regs[0] {
		total++
		up := tsField(m, "up_timestamp")
		for i := 1; i < len(regs); i++ {
			o, ok := regs[i][k]
			if ok && tsField(o, "up_timestamp") != up {
				differ++
				if example == "" {
					example = fmt.Sprintf("e.g. %s: %s %d, %s %d", k, names[0], up, names[i], tsField(o, "up_timestamp"))
				}
				break
			}
		}
	}
	s.r.Check("final: up_timestamp the same on every node", differ == 0,
		"%d of %d instances differ %s", differ, total, example)
}

// checkAcked: every acknowledged register is present (in its acknowledged version and status,
// or one sent later without an answer) unless cancelled later; no acknowledged cancel is still
// held anywhere (each is older than evictAfter by now).
func (s *Suite) checkAcked(regs []Registry, names []string) {
	var missing, stale, zombies []string
	present, cancelled, lateInsts := 0, 0, 0
	for _, in := range s.w.Insts {
		acked, uncertain, at := in.Expect()
		key := fmt.Sprintf("%s/%s/%s/%s", env, in.App, in.Zone, in.Host)
		okStates := append([]State{acked}, uncertain...)
		// A write that got no answer may land after later ones (see Inst.Late): its version
		// stays possible, with the status it sent or the one acknowledged last.
		late := in.Late()
		if len(late) > 0 {
			lateInsts++
		}
		for _, st := range late {
			okStates = append(okStates, st)
			if st.Present && acked.Present {
				okStates = append(okStates, State{Present: true, Version: st.Version, Status: acked.Status})
			}
		}
		if acked.Present {
			present++
		} else {
			cancelled++
		}
		for i, reg := range regs {
			got, has := reg[key]
			match := false
			for _, st := range okStates {
				if !st.Present && !has {
					match = true
				}
				if st.Present && has && got["version"] == st.Version && fmt.Sprint(got["status"]) == fmt.Sprint(st.Status) {
					match = true
				}
			}
			if match {
				continue
			}
			desc := fmt.Sprintf("%s on %s: acknowledged %s at %s", key, names[i], acked, at.Format("15:04:05.000"))
			switch {
			case acked.Present && !has:
				missing = append(missing, desc+", absent")
			case acked.Present:
				stale = append(stale, fmt.Sprintf("%s, holds %v/status %v", desc, got["version"], got["status"]))
			default:
				zombies = append(zombies, fmt.Sprintf("%s, still held (%s after the cancel)", desc, time.Since(at).Round(time.Second)))
			}
		}
	}
	s.r.Check("final: every acknowledged register present", len(missing) == 0,
		"%d instances registered, %d misses: %s", present, len(missing), first(missing))
	s.r.Check("final: every acknowledged change held (version, status)", len(stale) == 0,
		"%d stale copies (%d instances had writes without an answer, whose versions stay possible): %s",
		len(stale), lateInsts, first(stale))
	s.r.Check("final: no cancelled instance outlives evictAfter", len(zombies) == 0,
		"%d instances cancelled, %d copies left: %s", cancelled, len(zombies), first(zombies))
}

func first(x []string) string {
	if len(x) == 0 {
		return "none"
	}
	if len(x) > 3 {
		return strings.Join(x[:3], "; ") + fmt.Sprintf("; ... (%d more)", len(x)-3)
	}
	return strings.Join(x, "; ")
}

// checkPollers: every poller ends holding its node's current state of every app it watches.
func (s *Suite) checkPollers() {
	deadline := time.Now().Add(timing.PollHold + 3*time.Second)
	var behind []string
	for i := 0; i < 100; i++ {
		behind = behind[:0]
		for _, p := range s.w.Pollers {
			info, err := s.fetchApps(p.Node)
			if err != nil {
				behind = append(behind, fmt.Sprintf("%s: %v", p.Name, err))
				continue
			}
			for _, app := range s.w.Apps {
				v := p.View(app)
				want := info[app]
				up := map[string]string{}
				for _, list := range want.Instances {
					for _, in := range list {
						if in.Status == 1 {
							up[in.Hostname] = in.Version
						}
					}
				}
				if v.Latest != want.Latest || !sameMap(v.Instances, up) {
					behind = append(behind, fmt.Sprintf("%s %s: saw latest %d (%d up), node has %d (%d up)",
						p.Name, app, v.Latest, len(v.Instances), want.Latest, len(up)))
				}
			}
		}
		if len(behind) == 0 || time.Now().After(deadline) {
			break
		}
		s.sleep(500 * time.Millisecond)
	}
	answers, errs := 0, 0
	for _, p := range s.w.Pollers {
		p.mu.Lock()
		answers += p.Answers
		errs += p.Errors
		p.mu.Unlock()
	}
	sort.Strings(behind)
	s.r.Check("final: every poller saw every change", len(behind) == 0,
		"%d pollers, %d answers with changes, %d failed polls; behind: %s", len(s.w.Pollers), answers, errs, first(behind))
}

func (s *Suite) fetchApps(n *Node) (map[string]infoJSON, error) {
	params := map[string][]string{"env": {env}, "status": {"3"}, "appid": s.w.Apps}
	r := s.w.Call(s.ctx, n, "GET", "/discovery/fetchs", params, 3*time.Second)
	if r.Err != nil || r.Code != 0 {
		return nil, fmt.Errorf("fetchs: %v code %d", r.Err, r.Code)
	}
	var data map[string]infoJSON
	if err := decodeNumbers(r.Data, &data); err != nil {
		return nil, err
	}
	return data, nil
}

func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// checkBackwards: no node's app latest_timestamp went down, as sampled or as polled.
func (s *Suite) checkBackwards() {
	s.s.mu.Lock()
	back := append([]string(nil), s.s.Backwards...)
	s.s.mu.Unlock()
	for _, p := range s.w.Pollers {
		p.mu.Lock()
		for _, b := range p.Backwards {
			back = append(back, p.Name+" "+b)
		}
		p.mu.Unlock()
	}
	s.r.Check("final: no node's latest_timestamp went backwards", len(back) == 0,
		"%d times: %s", len(back), first(back))
}
