package endpoint

import (
	"bufio"
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

func connTotal(p *Proxy) int {
	n := 0
	for _, c := range p.Connections() {
		n += c
	}
	return n
}

// kernelEndpoint is an endpoint listening on a free port and put on the kernel path of a test
// table; the proxy is closed at the test's end (tests may close it before).
func kernelEndpoint(t *testing.T, name string) (Kernel, *Proxy, *Redirects, int) {
	t.Helper()
	k := kernelForTest(t)
	port := freePort(t)
	p, err := ListenLoopback(name, port, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	r, why := NewRedirects(context.Background(), k, nil)
	if r == nil {
		t.Fatalf("kernel path unavailable: %s", why)
	}
	p.UseKernel(r, port, "")
	return k, p, r, port
}

// TestProxyOnKernelPath: the endpoint's methods the supervisor calls drive the rule — repoint,
// pause (the proxy holds new connections), resume to the new writer — and a crash (proxy gone,
// table kept) keeps the endpoint serving until the next up removes the stale table.
func TestProxyOnKernelPath(t *testing.T) {
	k, p, _, port := kernelEndpoint(t, "writer")
	ctx := context.Background()
	a, b := backend(t, "a"), backend(t, "b")
	p.SetBackends([]string{a})
	if path, why := p.Path(); path != PathKernel {
		t.Fatalf("path = %s (%s), want kernel", path, why)
	}
	c, _, who := dialAsk(t, "127.0.0.1", port)
	if who != "a" || connTotal(p) != 0 {
		t.Fatalf("reached %q with %d proxied connections; want a straight through the kernel", who, connTotal(p))
	}
	c.Close()

	// Switchover: pause, repoint, resume. A connection made during the pause is held by the proxy.
	p.Pause(10 * time.Second)
	if path, _ := p.Path(); path != PathProxy {
		t.Fatalf("paused endpoint path = %s, want proxy", path)
	}
	held := make(chan string, 1)
	go func() {
		c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			held <- err.Error()
			return
		}
		defer c.Close()
		got, err := askNoHelper(c, "x")
		if err != nil {
			got = err.Error()
		}
		held <- got
	}()
	time.Sleep(200 * time.Millisecond)
	p.SetBackends([]string{b})
	p.Resume()
	if got := <-held; got != "b:x" {
		t.Fatalf("connection held during the pause got %q, want b:x", got)
	}
	c, _, who = dialAsk(t, "127.0.0.1", port)
	c.Close()
	if who != "b" {
		t.Fatalf("after resume reached %q, want b", who)
	}

	// Supervisor crash: the proxy is gone but the rule keeps serving.
	p.Close()
	c, _, who = dialAsk(t, "127.0.0.1", port)
	c.Close()
	if who != "b" {
		t.Fatalf("with the supervisor down reached %q, want b", who)
	}
	// The next up removes the stale table before anything else.
	if r2, why := NewRedirects(ctx, k, nil); r2 == nil {
		t.Fatalf("second up: %s", why)
	}
	if ok, err := k.Exists(ctx); err != nil || ok {
		t.Fatalf("stale table present after up = %v, %v; want false", ok, err)
	}
}

// TestProxyFallsBackWithoutNFT: no nft means the proxy path, with the reason in Path.
func TestProxyFallsBackWithoutNFT(t *testing.T) {
	a := backend(t, "a")
	port := freePort(t)
	p, err := ListenLoopback("reader", port, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	r, why := NewRedirects(context.Background(), Kernel{Table: TableName(t.TempDir()), NFT: "/nonexistent/nft"}, nil)
	if r != nil || why == "" {
		t.Fatalf("NewRedirects without nft = %v, %q; want nil and a reason", r, why)
	}
	p.UseKernel(r, port, why)
	p.SetBackends([]string{a})
	if path, got := p.Path(); path != PathProxy || got != why {
		t.Fatalf("path = %s (%s), want proxy (%s)", path, got, why)
	}
	c, _, who := dialAsk(t, "127.0.0.1", port)
	defer c.Close()
	if who != "a" || connTotal(p) != 1 {
		t.Fatalf("reached %q with %d proxied connections; want a through the proxy", who, connTotal(p))
	}
}

// askNoHelper is ask for goroutines (no testing.T).
func askNoHelper(c net.Conn, msg string) (string, error) {
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// TestRedirectsClosedStayClosed: once down has removed the table, a backend change made while
// the servers stop (the reader endpoint falling back to the writer, a reader leaving it) does not
// install it again, which would leave the twin's rules behind after down.
func TestRedirectsClosedStayClosed(t *testing.T) {
	k, p, r, _ := kernelEndpoint(t, "reader")
	ctx := context.Background()
	a, b := backend(t, "a"), backend(t, "b")
	p.SetBackends([]string{a})
	if ok, err := k.Exists(ctx); err != nil || !ok {
		t.Fatalf("table present = %v, %v; want true", ok, err)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	p.SetBackends([]string{b})
	p.SetFallback([]string{a})
	if ok, err := k.Exists(ctx); err != nil || ok {
		t.Errorf("table present after Close and a backend change = %v, %v; want false", ok, err)
	}
}
