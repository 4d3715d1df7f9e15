// The nodes under test: their configs, processes (each under its own uid, in its own process
// group), the nftables table that cuts links between them and steers every peer connection
// through the fault proxy.

package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	region    = "sh"
	deployEnv = "dev"
	port      = 7171
	// nftTable is the only table the suite creates, edits and deletes.
	nftTable = "discovery_faults"
	// faketimeLib is Debian's libfaketime (package faketime), multi-threaded variant.
	faketimeLib = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
	// peerTimeout is each node's httpClient.timeout: twice the example config's 1 s, so a
	// busy shared machine does not pass for a fault.
	peerTimeout = 2 * time.Second
)

// Node is one discovery process of the cluster.
type Node struct {
	Name   string
	Index  int // 1-based; fixes its address, uid and proxy ports
	Zone   string
	Addr   string // ip:port, as peers and clients reach it
	IP     string
	UID    int
	Go     bool // the Go original rather than ours
	Skewed bool // started with libfaketime reading ClockFile

	bin       string
	confDir   string
	logPath   string
	ClockFile string
	// mu guards the process state below: the sampler reads it while the suite restarts nodes.
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	stopped bool // SIGSTOPped
}

// Cluster is the set of nodes and what the suite did to their links.
type Cluster struct {
	Nodes   []*Node
	dir     string
	pidFile string
	timing  Timing
}

// Timing is the shortened [registry] section every node of ours gets.
type Timing struct {
	PollHold, EvictInterval, EvictAfter, EvictAfterProtected time.Duration
	GuardRecount, ProtectTimeout, SelfRenew                  time.Duration
}

func (t Timing) toml() string {
	d := func(x time.Duration) string { return x.String() }
	return fmt.Sprintf(`[registry]
pollHold = %q
evictInterval = %q
evictAfter = %q
evictAfterProtected = %q
guardRecount = %q
protectTimeout = %q
selfRenewInterval = %q
schedulerReload = "5s"
`, d(t.PollHold), d(t.EvictInterval), d(t.EvictAfter), d(t.EvictAfterProtected),
		d(t.GuardRecount), d(t.ProtectTimeout), d(t.SelfRenew))
}

// nodeIP is node i's loopback address: 127.0.77.(10+i), out of the way of 127.0.0.1 users.
func nodeIP(i int) string { return fmt.Sprintf("127.0.77.%d", 10+i) }

// proxyAddr is where the link from node `from` to node `to` is steered.
func proxyAddr(from, to int) string { return fmt.Sprintf("127.0.77.200:%d", 21000+from*10+to) }

// NewCluster lays out nodes: zone sh001 gets zone1 nodes, sh002 zone2 nodes; goAt is the
// index of the node that runs the Go original (0: none).
func NewCluster(dir, oursBin, goBin string, zone1, zone2, goAt, skewAt int, t Timing, uidBase int) (*Cluster, error) {
	c := &Cluster{dir: dir, pidFile: filepath.Join(dir, "pids"), timing: t}
	for i := 1; i <= zone1+zone2; i++ {
		zone := "sh001"
		if i > zone1 {
			zone = "sh002"
		}
		n := &Node{
			Name: fmt.Sprintf("n%d", i), Index: i, Zone: zone,
			IP: nodeIP(i), Addr: fmt.Sprintf("%s:%d", nodeIP(i), port),
			UID: uidBase + i, bin: oursBin, Go: i == goAt, Skewed: i == skewAt,
		}
		if n.Go {
			n.Name += "-go"
			n.bin = goBin
		}
		n.confDir = filepath.Join(dir, n.Name+"-conf")
		n.logPath = filepath.Join(dir, n.Name+".log")
		c.Nodes = append(c.Nodes, n)
	}
	for _, n := range c.Nodes {
		if err := c.writeConfig(n); err != nil {
			return nil, err
		}
		if n.Skewed {
			n.ClockFile = filepath.Join(dir, n.Name+".faketime")
			if err := os.WriteFile(n.ClockFile, []byte("+0\n"), 0o644); err != nil {
				return nil, err
			}
		}
	}
	return c, nil
}

func (c *Cluster) writeConfig(n *Node) error {
	var same, other []string
	for _, m := range c.Nodes {
		if m.Zone == n.Zone {
			same = append(same, fmt.Sprintf("%q", m.Addr))
		} else {
			other = append(other, fmt.Sprintf("%q", m.Addr))
		}
	}
	otherZone := "sh002"
	if n.Zone == "sh002" {
		otherZone = "sh001"
	}
	cfg := fmt.Sprintf(`nodes = [%s]
enableprotect = false

[zones]
%q = [%s]

[env]
region = %q
zone = %q
host = %q
DeployEnv = %q

[httpServer]
addr = %q
timeout = "40s"

[httpClient]
dial = "1s"
keepAlive = "60s"
timeout = %q

[log]
stdout = true

# Peer calls reach a node through the suite's fault proxy, from 127.0.0.1: our nodes
# authenticate with the peer token, which the proxy passes on; the Go node cannot send one,
# so the proxy's address is admitted too (the Go original ignores this section).
[auth]
peerToken = "faults-suite"
peerAddrs = ["127.0.0.1/32"]

`, strings.Join(same, ", "), otherZone, strings.Join(other, ", "), region, n.Zone, "faults-"+n.Name, deployEnv, n.Addr,
		peerTimeout.String())
	if !n.Go {
		cfg += c.timing.toml()
	}
	if err := os.MkdirAll(n.confDir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(n.confDir, "discovery.toml"), []byte(cfg), 0o644)
}

// Start launches n under its uid in a process group of its own and waits until it answers.
func (c *Cluster) Start(n *Node) error {
	logFile, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logFile, "==== %s start uid %d\n", time.Now().Format(time.RFC3339Nano), n.UID)
	cmd := exec.Command(n.bin, "-conf", n.confDir)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "RUST_LOG=info")
	if n.Skewed {
		// The wall clock follows ClockFile (re-read every second); monotonic time stays real,
		// or the node's timers would stall instead of its clock being off.
		cmd.Env = append(cmd.Env, "LD_PRELOAD="+faketimeLib, "FAKETIME_TIMESTAMP_FILE="+n.ClockFile,
			"FAKETIME_CACHE_DURATION=1", "FAKETIME_DONT_FAKE_MONOTONIC=1")
	}
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// Own uid (so nftables can tell its connections apart), own process group (signals reach
	// it and any wrapper), and death with the suite.
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setsid:     true,
		Pdeathsig:  syscall.SIGKILL,
		Credential: &syscall.Credential{Uid: uint32(n.UID), Gid: uint32(n.UID), Groups: []uint32{}},
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("%s: start: %w", n.Name, err)
	}
	done := make(chan struct{})
	n.mu.Lock()
	n.cmd, n.stopped, n.exited = cmd, false, done
	n.mu.Unlock()
	c.recordPid(cmd.Process.Pid)
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("%s: exited during start-up (see %s)", n.Name, n.logPath)
		default:
		}
		if n.answers() {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s: no answer within 30s", n.Name)
}

// answers is true when the node answers GET /discovery/nodes at all (even 503 in protection).
func (n *Node) answers() bool {
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get("http://" + n.Addr + "/discovery/nodes")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}

func (c *Cluster) recordPid(pid int) {
	f, err := os.OpenFile(c.pidFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	fmt.Fprintln(f, pid)
	f.Close()
}

// Signal sends sig to n's process group.
func (n *Node) Signal(sig syscall.Signal) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return
	}
	_ = syscall.Kill(-n.cmd.Process.Pid, sig)
	switch sig {
	case syscall.SIGSTOP:
		n.stopped = true
	case syscall.SIGCONT:
		n.stopped = false
	}
}

// Kill ends n with sig (SIGKILL or SIGTERM) and waits for it, bounded.
func (n *Node) Kill(sig syscall.Signal) {
	n.mu.Lock()
	cmd, exited, stopped := n.cmd, n.exited, n.stopped
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	if stopped {
		n.Signal(syscall.SIGCONT)
	}
	n.Signal(sig)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		n.Signal(syscall.SIGKILL)
		<-exited
	}
	n.mu.Lock()
	n.cmd = nil
	n.mu.Unlock()
}

// state is (started and not killed by the suite, exited on its own, SIGSTOPped).
func (n *Node) state() (started, exited, stopped bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false, false, false
	}
	select {
	case <-n.exited:
		return true, true, n.stopped
	default:
		return true, false, n.stopped
	}
}

// Running is true while the process is alive (stopped or not).
func (n *Node) Running() bool {
	started, exited, _ := n.state()
	return started && !exited
}

// Serving is true while the process is alive and not stopped.
func (n *Node) Serving() bool {
	started, exited, stopped := n.state()
	return started && !exited && !stopped
}

// Died is true when the process ended without the suite ending it.
func (n *Node) Died() bool {
	started, exited, _ := n.state()
	return started && exited
}

// SetSkew moves n's wall clock by d (libfaketime picks it up within a second).
func (n *Node) SetSkew(d time.Duration) error {
	if !n.Skewed {
		return fmt.Errorf("%s was not started with libfaketime", n.Name)
	}
	return os.WriteFile(n.ClockFile, []byte(fmt.Sprintf("%+d\n", int(d.Seconds()))), 0o644)
}

// StopAll ends every node (SIGKILL: the suite is done with them).
func (c *Cluster) StopAll() {
	for _, n := range c.Nodes {
		n.Kill(syscall.SIGKILL)
	}
}

// LogTail is the last lines of a node's log, for failure reports.
func (n *Node) LogTail(lines int) string {
	f, err := os.Open(n.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	var all []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		all = append(all, sc.Text())
	}
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// ---- nftables ----------------------------------------------------------------------------

// nft runs one nft command (arguments as separate words).
func nft(args ...string) error {
	out, err := exec.Command("nft", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("nft %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// NetSetup creates the suite's table: chain `cut` (filter, before NAT, so it sees the peer's
// real address) for dropped links, chain `steer` (NAT) sending each node's peer connections
// through its own proxy port.
func (c *Cluster) NetSetup() error {
	_ = nft("delete", "table", "ip", nftTable)
	if err := nft("add", "table", "ip", nftTable); err != nil {
		return err
	}
	if err := nft("add", "chain", "ip", nftTable, "cut", "{ type filter hook output priority -200 ; }"); err != nil {
		return err
	}
	if err := nft("add", "chain", "ip", nftTable, "steer", "{ type nat hook output priority -100 ; }"); err != nil {
		return err
	}
	for _, from := range c.Nodes {
		for _, to := range c.Nodes {
			if from == to {
				continue
			}
			pa := proxyAddr(from.Index, to.Index)
			if err := nft("add", "rule", "ip", nftTable, "steer", "meta", "skuid", fmt.Sprint(from.UID),
				"ip", "daddr", to.IP, "tcp", "dport", fmt.Sprint(port), "dnat", "to", pa); err != nil {
				return err
			}
		}
	}
	return nil
}

// NetTeardown deletes the suite's table (and nothing else).
func NetTeardown() { _ = nft("delete", "table", "ip", nftTable) }

// Cut drops every packet n sends to each of `to` (one direction).
func (c *Cluster) Cut(from *Node, to ...*Node) error {
	for _, t := range to {
		if err := nft("add", "rule", "ip", nftTable, "cut", "meta", "skuid", fmt.Sprint(from.UID),
			"ip", "daddr", t.IP, "tcp", "dport", fmt.Sprint(port), "drop"); err != nil {
			return err
		}
	}
	return nil
}

// Partition cuts every link between the two groups, both ways.
func (c *Cluster) Partition(a, b []*Node) error {
	for _, x := range a {
		if err := c.Cut(x, b...); err != nil {
			return err
		}
	}
	for _, y := range b {
		if err := c.Cut(y, a...); err != nil {
			return err
		}
	}
	return nil
}

// Heal removes every cut.
func (c *Cluster) Heal() error { return nft("flush", "chain", "ip", nftTable, "cut") }

// Ours lists the nodes running our server.
func (c *Cluster) Ours() []*Node {
	var out []*Node
	for _, n := range c.Nodes {
		if !n.Go {
			out = append(out, n)
		}
	}
	return out
}

func (c *Cluster) zone(z string) []*Node {
	var out []*Node
	for _, n := range c.Nodes {
		if n.Zone == z {
			out = append(out, n)
		}
	}
	return out
}

func (c *Cluster) except(skip ...*Node) []*Node {
	var out []*Node
	for _, n := range c.Nodes {
		keep := true
		for _, s := range skip {
			if s == n {
				keep = false
			}
		}
		if keep {
			out = append(out, n)
		}
	}
	return out
}

// free reports whether ip:port can be listened on (nobody else uses the suite's addresses).
func free(addr string) bool {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	l.Close()
	return true
}
