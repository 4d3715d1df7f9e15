package interop

// Shared harness: starts discovery nodes (ours and the Go original) as child
// processes on free loopback ports, talks plain HTTP to them, and waits for
// conditions with a bounded deadline instead of sleeping.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	klog "github.com/go-kratos/kratos/pkg/log"
)

const (
	region    = "sh"
	zone      = "sh001"
	deployEnv = "dev"

	// waitFor bounds every wait for a condition; generous for a loaded 2-core machine.
	waitFor = 20 * time.Second
	// startFor bounds the wait for a freshly started node to answer.
	startFor = 20 * time.Second
)

func TestMain(m *testing.M) {
	// The Go SDK logs through kratos' logger, to stdout unless told otherwise:
	// keep its lines in files beside the node logs.
	dir := os.Getenv("INTEROP_LOG_DIR")
	if dir == "" {
		dir = os.TempDir()
	}
	klog.Init(&klog.Config{Dir: filepath.Join(dir, "sdk-log")})
	os.Exit(m.Run())
}

// Binaries under test; run.sh sets both, the defaults match its layout.
func oursBin() string { return envOr("DISCOVERY_RS_BIN", "../../target/debug/discovery") }
func goBin() string   { return envOr("DISCOVERY_GO_BIN", ".cache/bin/discovery-go") }

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// logDir is where node logs are kept; run.sh points it into .cache/logs.
func logDir(t *testing.T) string {
	base := os.Getenv("INTEROP_LOG_DIR")
	if base == "" {
		base = t.TempDir()
	}
	dir := filepath.Join(base, strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("create log dir: %v", err)
	}
	return dir
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pick a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// nodeConfig is one discovery.toml; both implementations read the same file.
type nodeConfig struct {
	Addr  string   // httpServer.addr
	Host  string   // env.host
	Nodes []string // all nodes of the zone, this one included
	Extra string   // more TOML, appended as is
}

func (c nodeConfig) toml() string {
	quoted := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		quoted[i] = fmt.Sprintf("%q", n)
	}
	return fmt.Sprintf(`nodes = [%s]
enableprotect = false

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
timeout = "1s"

[log]
stdout = true
%s`, strings.Join(quoted, ", "), region, zone, c.Host, deployEnv, c.Addr, c.Extra)
}

// node is one running (or stopped) discovery process.
type node struct {
	t       *testing.T
	name    string
	bin     string
	env     []string
	cfg     nodeConfig
	confDir string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
}

func startOurs(t *testing.T, name string, cfg nodeConfig) *node {
	// access=debug adds one line per request to the log, handy when a check fails.
	return startNode(t, name, oursBin(), []string{"RUST_LOG=info,access=debug"}, cfg)
}

func startGo(t *testing.T, name string, cfg nodeConfig) *node {
	return startNode(t, name, goBin(), nil, cfg)
}

func startNode(t *testing.T, name, bin string, env []string, cfg nodeConfig) *node {
	t.Helper()
	abs, err := filepath.Abs(bin)
	if err != nil {
		t.Fatalf("%s: binary path: %v", name, err)
	}
	if _, err := os.Stat(abs); err != nil {
		t.Fatalf("%s: binary %s is missing (run.sh builds it): %v", name, bin, err)
	}
	dir := logDir(t)
	n := &node{
		t:       t,
		name:    name,
		bin:     abs,
		env:     env,
		cfg:     cfg,
		confDir: filepath.Join(dir, name+"-conf"),
		logPath: filepath.Join(dir, name+".log"),
	}
	if err := os.MkdirAll(n.confDir, 0o755); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(n.confDir, "discovery.toml"), []byte(cfg.toml()), 0o644); err != nil {
		t.Fatalf("%s: write config: %v", name, err)
	}
	n.start()
	t.Cleanup(func() {
		n.stop(syscall.SIGKILL)
		if t.Failed() {
			n.dumpLog(40)
		}
	})
	return n
}

func (n *node) addr() string { return n.cfg.Addr }

// start launches the process and waits until GET /discovery/nodes answers 200.
func (n *node) start() {
	n.t.Helper()
	logFile, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		n.t.Fatalf("%s: open log: %v", n.name, err)
	}
	fmt.Fprintf(logFile, "==== %s start %s -conf %s\n", time.Now().Format(time.RFC3339Nano), n.bin, n.confDir)
	cmd := exec.Command(n.bin, "-conf", n.confDir)
	cmd.Env = append(os.Environ(), n.env...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// The node dies with the test binary even if the test binary is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		n.t.Fatalf("%s: start: %v", n.name, err)
	}
	n.cmd = cmd
	n.exited = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(n.exited)
	}()

	deadline := time.Now().Add(startFor)
	for {
		select {
		case <-n.exited:
			n.dumpLog(40)
			n.t.Fatalf("%s: exited during start-up: %v", n.name, cmd.ProcessState)
		default:
		}
		if code, err := httpStatus(n.addr(), "/discovery/nodes"); err == nil && code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			n.dumpLog(40)
			n.t.Fatalf("%s: no 200 from GET /discovery/nodes within %v", n.name, startFor)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends sig and waits (bounded) for the process to exit.
func (n *node) stop(sig syscall.Signal) {
	if n.cmd == nil {
		return
	}
	select {
	case <-n.exited:
	default:
		_ = n.cmd.Process.Signal(sig)
		select {
		case <-n.exited:
		case <-time.After(10 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.exited
		}
	}
	n.cmd = nil
}

func (n *node) dumpLog(lines int) {
	data, err := os.ReadFile(n.logPath)
	if err != nil {
		return
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	n.t.Logf("last %d lines of %s (%s):\n%s", len(all), n.name, n.logPath, strings.Join(all, "\n"))
}

// ---- HTTP ----

var httpClient = &http.Client{Timeout: 45 * time.Second}

// reply is the discovery answer envelope.
type reply struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
	Error   json.RawMessage `json:"error"`
	raw     string
}

func (r reply) String() string { return r.raw }

func httpStatus(addr, path string) (int, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func decodeReply(resp *http.Response) (reply, error) {
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	var r reply
	if resp.StatusCode != http.StatusOK {
		return reply{raw: string(body)}, fmt.Errorf("HTTP %d: %s", resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return reply{raw: string(body)}, fmt.Errorf("bad JSON %q: %v", body, err)
	}
	r.raw = string(body)
	return r, nil
}

// get sends GET /discovery/<path>?<params>.
func get(ctx context.Context, addr, path string, params url.Values) (reply, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/discovery/"+path+"?"+params.Encode(), nil)
	if err != nil {
		return reply{}, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	return decodeReply(resp)
}

// postForm sends POST /discovery/<path> with a form body, as the Go SDK and the Go nodes do.
func postForm(addr, path string, params url.Values) (reply, error) {
	resp, err := httpClient.Post("http://"+addr+"/discovery/"+path,
		"application/x-www-form-urlencoded", strings.NewReader(params.Encode()))
	if err != nil {
		return reply{}, err
	}
	return decodeReply(resp)
}

// instance is the wire form of a registered instance.
type instance struct {
	Region          string            `json:"region"`
	Zone            string            `json:"zone"`
	Env             string            `json:"env"`
	AppID           string            `json:"appid"`
	Hostname        string            `json:"hostname"`
	Addrs           []string          `json:"addrs"`
	Version         string            `json:"version"`
	Metadata        map[string]string `json:"metadata"`
	Status          int               `json:"status"`
	RegTimestamp    int64             `json:"reg_timestamp"`
	UpTimestamp     int64             `json:"up_timestamp"`
	RenewTimestamp  int64             `json:"renew_timestamp"`
	DirtyTimestamp  int64             `json:"dirty_timestamp"`
	LatestTimestamp int64             `json:"latest_timestamp"`
}

type instancesInfo struct {
	Instances       map[string][]instance `json:"instances"`
	LatestTimestamp int64                 `json:"latest_timestamp"`
}

// fetchApp asks addr for all instances (any status) of appid. A -404 gives an
// empty map and no error.
func fetchApp(addr, appid string) (map[string]instance, reply, error) {
	r, err := get(context.Background(), addr, "fetch", url.Values{
		"appid": {appid}, "env": {deployEnv}, "status": {"3"},
	})
	if err != nil {
		return nil, r, err
	}
	out := map[string]instance{}
	switch r.Code {
	case -404:
		return out, r, nil
	case 0:
	default:
		return nil, r, fmt.Errorf("fetch %s: code %d: %s", appid, r.Code, r.raw)
	}
	var info instancesInfo
	if err := json.Unmarshal(r.Data, &info); err != nil {
		return nil, r, fmt.Errorf("fetch %s: %v: %s", appid, err, r.raw)
	}
	for _, list := range info.Instances {
		for _, in := range list {
			out[in.Hostname] = in
		}
	}
	return out, r, nil
}

// fetchAllApp asks addr's GET fetch/all (which carries current renew
// timestamps; a plain fetch may show the one of the last change) for the
// instances of appid, by hostname.
func fetchAllApp(addr, appid string) (map[string]instance, reply, error) {
	r, err := get(context.Background(), addr, "fetch/all", nil)
	if err != nil {
		return nil, r, err
	}
	if r.Code != 0 {
		return nil, r, fmt.Errorf("fetch/all: code %d: %s", r.Code, r.raw)
	}
	var all map[string][]instance
	if err := json.Unmarshal(r.Data, &all); err != nil {
		return nil, r, fmt.Errorf("fetch/all: %v: %s", err, r.raw)
	}
	out := map[string]instance{}
	for _, in := range all[appid] {
		out[in.Hostname] = in
	}
	return out, r, nil
}

// registerParams is a register as the Go SDK sends it: repeated addrs, metadata as JSON.
func registerParams(appid, host string, addrs []string, metadata map[string]string) url.Values {
	md, _ := json.Marshal(metadata)
	return url.Values{
		"region": {region}, "zone": {zone}, "env": {deployEnv}, "appid": {appid},
		"hostname": {host}, "addrs": addrs, "version": {"v1.0.0"}, "status": {"1"},
		"metadata": {string(md)},
	}
}

func instanceParams(appid, host string) url.Values {
	return url.Values{"region": {region}, "zone": {zone}, "env": {deployEnv}, "appid": {appid}, "hostname": {host}}
}

// ---- waiting ----

// eventually re-evaluates cond until it reports true or waitFor passes; the
// last explanation it gave becomes the failure message.
func eventually(t *testing.T, what string, cond func() (bool, string)) bool {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		ok, why := cond()
		if ok {
			return true
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: not true within %v: %s", what, waitFor, why)
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// check runs one named check as a subtest and reports whether it passed.
func check(t *testing.T, name string, fn func(t *testing.T)) bool {
	t.Helper()
	return t.Run(name, fn)
}

// describe renders instances compactly for failure messages.
func describe(ins map[string]instance) string {
	var b bytes.Buffer
	for h, in := range ins {
		fmt.Fprintf(&b, "%s{addrs=%v status=%d renew=%d} ", h, in.Addrs, in.Status, in.RenewTimestamp)
	}
	if b.Len() == 0 {
		return "(none)"
	}
	return b.String()
}
