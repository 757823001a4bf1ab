// Package endpoint provides the local twin's cluster and reader endpoints: TCP proxies on loopback
// that pass bytes through untouched (TLS runs end to end between client and PostgreSQL, so
// verify-full checks the server's own certificate), spread connections over a set of backends,
// can be repointed, and can close the connections still going to a backend that lost its role.
package endpoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Proxy is one endpoint.
type Proxy struct {
	Name string
	lns  []net.Listener
	log  *slog.Logger

	mu       sync.Mutex
	backends []string
	fallback []string
	next     int
	conns    map[*pair]struct{}
	closed   bool
	wg       sync.WaitGroup

	pause pauseState // failover and switchover: new connections wait (pause.go)

	kernel *Redirects // kernel path (kernel.go); nil: proxy only
	kport  int
	kwhy   string
	ksync  sync.Mutex // orders rule changes
}

type pair struct {
	client, backend net.Conn
	addr            string
}

// Listen opens the endpoint on addr (host:port). A port already taken is reported with what holds
// it, when that can be found.
func Listen(name, addr string, log *slog.Logger) (*Proxy, error) {
	ln, err := listen(name, addr)
	if err != nil {
		return nil, err
	}
	return serve(name, []net.Listener{ln}, log), nil
}

// ListenLoopback opens the endpoint on port on 127.0.0.1 and, where the machine has IPv6, on ::1:
// clients connecting to "localhost" may try either first, and must never reach another server
// that holds the port on the other address (Debian's own cluster listens on both).
func ListenLoopback(name string, port int, log *slog.Logger) (*Proxy, error) {
	v4, err := listen(name, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	lns := []net.Listener{v4}
	v6, err := listen(name, net.JoinHostPort("::1", strconv.Itoa(port)))
	switch {
	case err == nil:
		lns = append(lns, v6)
	case isAddrInUse(err):
		v4.Close()
		return nil, err
	}
	// Any other failure means no IPv6 loopback here; "localhost" then resolves to 127.0.0.1 only.
	return serve(name, lns, log), nil
}

func listen(name, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if isAddrInUse(err) {
			_, port, _ := net.SplitHostPort(addr)
			return nil, fmt.Errorf("%s endpoint: %s is already in use%s: %w", name, addr, describeOwner(port), err)
		}
		return nil, fmt.Errorf("%s endpoint: listen on %s: %w", name, addr, err)
	}
	return ln, nil
}

func serve(name string, lns []net.Listener, log *slog.Logger) *Proxy {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Proxy{Name: name, lns: lns, log: log, conns: map[*pair]struct{}{}}
	for _, ln := range lns {
		p.wg.Add(1)
		go p.serve(ln)
	}
	return p
}

// Addr is where the endpoint listens (its IPv4 address).
func (p *Proxy) Addr() string { return p.lns[0].Addr().String() }

// SetBackends repoints the endpoint; new connections go round-robin over addrs (none: refused).
// Existing connections are left alone; CloseConnectionsTo ends them.
func (p *Proxy) SetBackends(addrs []string) {
	p.mu.Lock()
	if !equal(p.backends, addrs) {
		p.log.Info("endpoint repointed", "endpoint", p.Name, "backends", addrs)
	}
	p.backends = append([]string(nil), addrs...)
	p.mu.Unlock()
	p.syncKernel()
}

// SetFallback sets where connections go when no backend is reachable (the reader endpoint falls
// back to the writer, also in the moment between a reader's death and its removal).
func (p *Proxy) SetFallback(addrs []string) {
	p.mu.Lock()
	p.fallback = append([]string(nil), addrs...)
	p.mu.Unlock()
	p.syncKernel()
}

// Backends returns the current backends.
func (p *Proxy) Backends() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.backends...)
}

// Connections counts open client connections per backend.
func (p *Proxy) Connections() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for c := range p.conns {
		out[c.addr]++
	}
	return out
}

// CloseConnectionsTo ends every client connection relayed to addr (a writer that is no longer the
// writer must not keep taking writes) and returns how many it closed.
func (p *Proxy) CloseConnectionsTo(addr string) int {
	p.mu.Lock()
	var victims []*pair
	for c := range p.conns {
		if c.addr == addr {
			victims = append(victims, c)
		}
	}
	p.mu.Unlock()
	for _, c := range victims {
		c.client.Close()
		c.backend.Close()
	}
	return len(victims)
}

// Close stops listening and ends every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	var all []*pair
	for c := range p.conns {
		all = append(all, c)
	}
	p.mu.Unlock()
	var err error
	for _, ln := range p.lns {
		if e := ln.Close(); e != nil && err == nil {
			err = e
		}
	}
	for _, c := range all {
		c.client.Close()
		c.backend.Close()
	}
	p.wg.Wait()
	return err
}

func (p *Proxy) serve(ln net.Listener) {
	defer p.wg.Done()
	for {
		client, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			p.log.Warn("accept", "endpoint", p.Name, "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.relay(client)
		}()
	}
}

func (p *Proxy) pick(tried map[string]bool) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pause.on {
		return ""
	}
	for range p.backends {
		addr := p.backends[p.next%len(p.backends)]
		p.next++
		if !tried[addr] {
			return addr
		}
	}
	for _, addr := range p.fallback {
		if !tried[addr] {
			return addr
		}
	}
	return ""
}

func (p *Proxy) relay(client net.Conn) {
	defer client.Close()
	tried := map[string]bool{}
	var backend net.Conn
	var addr string
	for {
		addr = p.pick(tried)
		if addr == "" && p.waitResume(client) {
			tried = map[string]bool{}
			continue
		}
		if addr == "" {
			p.log.Warn("no backend reachable; connection refused", "endpoint", p.Name, "client", client.RemoteAddr().String())
			return
		}
		tried[addr] = true
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		cancel()
		if err == nil {
			backend = c
			break
		}
		p.log.Warn("backend unreachable", "endpoint", p.Name, "backend", addr, "err", err)
	}
	pr := &pair{client: client, backend: backend, addr: addr}
	p.mu.Lock()
	// Fencing: a backend removed while this connection was being dialled must not get it.
	if p.closed || p.pause.on || (!slices.Contains(p.backends, addr) && !slices.Contains(p.fallback, addr)) {
		p.mu.Unlock()
		backend.Close()
		return
	}
	p.conns[pr] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, pr)
		p.mu.Unlock()
		backend.Close()
	}()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Half-close so the other side sees the end of the stream, then let the other copy end.
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(backend, client)
	go pipe(client, backend)
	<-done
	// One side is gone: end both, as PostgreSQL's protocol has no use for a half-open session.
	client.Close()
	backend.Close()
	<-done
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
