package endpoint

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/apgstack/apgstack/internal/twin/api"
)

// Endpoint paths, as status reports them (declared with the status type).
const (
	PathKernel = api.EndpointPathKernel
	PathProxy  = api.EndpointPathProxy
)

// Redirects is the kernel path shared by a twin's endpoints: one nftables table holding one
// route per endpoint. The proxies keep listening on the public ports: a redirect takes new
// connections before they reach the proxy's socket, and a port without a rule (a paused endpoint,
// or a failed nft run) is served by the proxy as before. So pausing is "drop the rule" and the
// proxy's own pause holds the connection; resuming is "rule to the new writer".
type Redirects struct {
	k   Kernel
	log *slog.Logger

	mu     sync.Mutex
	routes map[string]Route
	failed string // last apply failure, "" when the table matches routes
	closed bool   // after Close nothing is installed again: the twin is going down
}

// NewRedirects prepares the twin's kernel path, removing a table its twin left behind (a
// supervisor crash keeps the rules serving; the next up starts afresh). It returns nil and the
// reason when the kernel path cannot be used here; the endpoints then stay on the proxy path.
func NewRedirects(ctx context.Context, k Kernel, log *slog.Logger) (*Redirects, string) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if why := k.KernelUnavailable(ctx); why != "" {
		log.Info("endpoints on the proxy path", "reason", why)
		return nil, why
	}
	if err := k.Remove(ctx); err != nil {
		log.Warn("endpoints on the proxy path", "err", err)
		return nil, err.Error()
	}
	return &Redirects{k: k, log: log, routes: map[string]Route{}}, ""
}

// set installs one endpoint's route, the whole table in one transaction. On failure the table is
// removed so every port falls back to its proxy (never a stale rule to a demoted writer).
func (r *Redirects) set(name string, rt Route) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.routes[name] = rt
	all := make([]Route, 0, len(r.routes))
	for _, x := range r.routes {
		all = append(all, x)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.k.Apply(ctx, all); err != nil {
		r.failed = err.Error()
		r.log.Error("kernel endpoint change failed; proxy serves", "endpoint", name, "err", err)
		if err := r.k.Remove(ctx); err != nil {
			r.log.Error("remove nftables table", "err", err)
		}
		return
	}
	r.failed = ""
}

// path says which path name's new connections take and why.
func (r *Redirects) path(name string) (string, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.failed != "":
		return PathProxy, "nftables change failed: " + r.failed
	case len(r.routes[name].Targets) == 0:
		return PathProxy, "paused or no backend: the proxy holds new connections"
	}
	return PathKernel, "nftables table " + r.k.Table
}

// Close removes the table (down), for good: a backend changed while the servers stop does not
// bring it back. A supervisor that dies leaves it, so endpoints keep serving.
func (r *Redirects) Close(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	r.routes = map[string]Route{}
	return r.k.Remove(ctx)
}

// UseKernel puts the endpoint, listening on public port port, on the kernel path; r may be nil
// (no kernel path), and why is then the reason status reports.
func (p *Proxy) UseKernel(r *Redirects, port int, why string) {
	p.mu.Lock()
	p.kernel, p.kport, p.kwhy = r, port, why
	p.mu.Unlock()
	p.syncKernel()
}

// Path reports the endpoint's path and why.
func (p *Proxy) Path() (path, why string) {
	p.mu.Lock()
	r, kwhy := p.kernel, p.kwhy
	p.mu.Unlock()
	if r == nil {
		if kwhy == "" {
			kwhy = "kernel path not configured"
		}
		return PathProxy, kwhy
	}
	return r.path(p.Name)
}

// syncKernel points the endpoint's rule where the proxy would send a new connection: nowhere
// while paused (the proxy holds it), else the backends, else the fallback.
func (p *Proxy) syncKernel() {
	p.ksync.Lock() // changes reach nft in the order they were made
	defer p.ksync.Unlock()
	p.mu.Lock()
	r, port := p.kernel, p.kport
	var addrs []string
	switch {
	case p.pause.on:
	case len(p.backends) > 0:
		addrs = p.backends
	default:
		addrs = p.fallback
	}
	targets := ports(addrs)
	p.mu.Unlock()
	if r != nil {
		r.set(p.Name, Route{Port: port, Targets: targets})
	}
}

// ports keeps the loopback backends' ports; a redirect can only reach this machine.
func ports(addrs []string) []int {
	var out []int
	for _, a := range addrs {
		host, p, err := net.SplitHostPort(a)
		if err != nil {
			continue
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			continue
		}
		if n, err := strconv.Atoi(p); err == nil {
			out = append(out, n)
		}
	}
	return out
}
