// The fault proxy: every peer connection of every node is steered (by nftables) through one
// listener per directed link, which forwards HTTP/1.1 requests one by one and can delay them,
// reset the connection mid-body, answer 413 to batches, or forward only part of a batch and
// return the peer's short answer. It counts the ops it kept from the peer.

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Mode is what a link does to the requests crossing it.
type Mode int

const (
	Pass Mode = iota
	Delay
	Reset      // alternately: reset while reading the request (not forwarded) / mid-answer
	Batch413   // POST /discovery/replicate answered 413 without forwarding
	ShortBatch // only the first half of a batch forwarded; the peer's (short) answer returned
	SlowSync   // GET /discovery/fetch/all answered after the delay
	Refuse     // every request read whole, never forwarded, the connection reset
)

func (m Mode) String() string {
	return [...]string{"pass", "delay", "reset", "413", "short-batch", "slow-sync", "refuse"}[m]
}

// Link is one directed link's listener and state.
type Link struct {
	From, To *Node
	ln       net.Listener

	mu    sync.Mutex
	mode  Mode
	delay time.Duration

	Requests  atomic.Int64
	Forwarded atomic.Int64 // ops handed to the peer
	Withheld  atomic.Int64 // ops cut out of batches the sender got a 200 answer for
	Resets    atomic.Int64
	flip      atomic.Int64
}

// Proxy holds every link.
type Proxy struct {
	Links []*Link
	wg    sync.WaitGroup
	conns sync.Map // net.Conn -> struct{}, closed at shutdown
}

// StartProxy listens on every directed link between nodes.
func StartProxy(nodes []*Node) (*Proxy, error) {
	p := &Proxy{}
	for _, from := range nodes {
		for _, to := range nodes {
			if from == to {
				continue
			}
			ln, err := net.Listen("tcp", proxyAddr(from.Index, to.Index))
			if err != nil {
				p.Close()
				return nil, fmt.Errorf("proxy %s->%s: %w", from.Name, to.Name, err)
			}
			l := &Link{From: from, To: to, ln: ln}
			p.Links = append(p.Links, l)
			p.wg.Add(1)
			go p.accept(l)
		}
	}
	return p, nil
}

// Close stops every listener and connection.
func (p *Proxy) Close() {
	for _, l := range p.Links {
		l.ln.Close()
	}
	p.conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
	p.wg.Wait()
}

// Set gives every link into `to` (or out of `from`, when to is nil) a mode.
func (p *Proxy) Set(from, to *Node, m Mode, d time.Duration) {
	for _, l := range p.Links {
		if (from == nil || l.From == from) && (to == nil || l.To == to) {
			l.mu.Lock()
			l.mode, l.delay = m, d
			l.mu.Unlock()
		}
	}
}

// Clear puts every link back to pass.
func (p *Proxy) Clear() { p.Set(nil, nil, Pass, 0) }

// Totals sums requests, ops forwarded, connections reset and ops kept from peers over all links.
func (p *Proxy) Totals() [4]int64 {
	var t [4]int64
	for _, l := range p.Links {
		t[0] += l.Requests.Load()
		t[1] += l.Forwarded.Load()
		t[2] += l.Resets.Load()
		t[3] += l.Withheld.Load()
	}
	return t
}

// Withheld sums the ops kept from peers on links out of `from`.
func (p *Proxy) Withheld(from *Node) int64 {
	var n int64
	for _, l := range p.Links {
		if l.From == from {
			n += l.Withheld.Load()
		}
	}
	return n
}

func (l *Link) current() (Mode, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mode, l.delay
}

func (p *Proxy) accept(l *Link) {
	defer p.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.conns.Store(c, struct{}{})
			defer p.conns.Delete(c)
			defer c.Close()
			l.serve(c, &p.conns)
		}()
	}
}

// opsIn counts the replicated ops a request carries.
func opsIn(path string, body []byte) int64 {
	if path == "/discovery/replicate" {
		return int64(bytes.Count(body, []byte("\n")))
	}
	switch path {
	case "/discovery/register", "/discovery/renew", "/discovery/cancel", "/discovery/set":
		return 1
	}
	return 0
}

func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

// serve forwards the requests of one connection over one upstream connection of its own.
func (l *Link) serve(c net.Conn, conns *sync.Map) {
	br := bufio.NewReader(c)
	var up net.Conn
	var ubr *bufio.Reader
	defer func() {
		if up != nil {
			up.Close()
		}
	}()
	for i := 0; i < 1_000_000; i++ {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		mode, delay := l.current()
		l.Requests.Add(1)
		if mode == Reset && req.ContentLength > 1 && l.flip.Add(1)%2 == 1 {
			// Reset with the request half read: the peer never sees it.
			half := make([]byte, req.ContentLength/2)
			_, _ = io.ReadFull(req.Body, half)
			l.Resets.Add(1)
			resetConn(c)
			return
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		req.Body.Close()
		ops := opsIn(req.URL.Path, body)
		if mode == Refuse {
			// Unlike a dropped packet, nothing of it can reach the peer later (a cut TCP
			// connection retransmits what it had sent once the link is back).
			l.Resets.Add(1)
			resetConn(c)
			return
		}
		if mode == Delay || (mode == SlowSync && req.URL.Path == "/discovery/fetch/all") {
			time.Sleep(delay)
		}
		if mode == Batch413 && req.URL.Path == "/discovery/replicate" {
			msg := "request body too large\n"
			fmt.Fprintf(c, "HTTP/1.1 413 Payload Too Large\r\nServer: discovery-rs\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(msg), msg)
			continue
		}
		if mode == ShortBatch && req.URL.Path == "/discovery/replicate" && ops > 1 {
			lines := strings.SplitAfter(string(body), "\n")
			keep := int(ops) / 2
			body = []byte(strings.Join(lines[:keep], ""))
			l.Withheld.Add(ops - int64(keep))
			ops = int64(keep)
		}
		if up == nil {
			up, err = net.DialTimeout("tcp", l.To.Addr, 2*time.Second)
			if err != nil {
				resetConn(c)
				return
			}
			conns.Store(up, struct{}{})
			defer conns.Delete(up)
			ubr = bufio.NewReader(up)
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		req.Header.Set("Content-Length", strconv.Itoa(len(body)))
		if err := req.Write(up); err != nil {
			return
		}
		l.Forwarded.Add(ops)
		resp, err := http.ReadResponse(ubr, req)
		if err != nil {
			return
		}
		rbody, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return
		}
		if mode == SlowSync && req.URL.Path == "/discovery/fetch/all" {
			// Held before and after the peer builds it: the syncing node keeps taking writes
			// meanwhile, and the answer it applies is older than what it holds.
			time.Sleep(delay)
		}
		if mode == Reset && len(rbody) > 1 {
			// Reset halfway through the answer: the peer applied the request, the sender
			// cannot know.
			var head bytes.Buffer
			fmt.Fprintf(&head, "HTTP/1.1 %s\r\n", resp.Status)
			resp.Header.Del("Transfer-Encoding")
			resp.Header.Set("Content-Length", strconv.Itoa(len(rbody)))
			_ = resp.Header.Write(&head)
			head.WriteString("\r\n")
			head.Write(rbody[:len(rbody)/2])
			_, _ = c.Write(head.Bytes())
			l.Resets.Add(1)
			resetConn(c)
			return
		}
		resp.Body = io.NopCloser(bytes.NewReader(rbody))
		resp.ContentLength = int64(len(rbody))
		resp.TransferEncoding = nil
		resp.Header.Del("Transfer-Encoding")
		if err := resp.Write(c); err != nil {
			return
		}
		if resp.Close || req.Close {
			return
		}
	}
}
