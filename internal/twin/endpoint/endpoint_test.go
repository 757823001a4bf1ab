package endpoint

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// backend answers every line with its name.
func backend(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveEcho(t, ln, name)
}

// serveEcho answers every line received on ln with name, until the test ends; it returns ln's
// address.
func serveEcho(t *testing.T, ln net.Listener, name string) string {
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					fmt.Fprintf(c, "%s:%s\n", name, sc.Text())
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func ask(t *testing.T, c net.Conn, r *bufio.Reader, msg string) (string, error) {
	t.Helper()
	if _, err := fmt.Fprintln(c, msg); err != nil {
		return "", err
	}
	line, err := r.ReadString('\n')
	return strings.TrimSpace(line), err
}

func TestProxy(t *testing.T) {
	a, b := backend(t, "a"), backend(t, "b")
	p, err := Listen("reader", "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c, bufio.NewReader(c)
	}

	// No backend: refused (the connection is closed without an answer).
	c, r := dial()
	if got, err := ask(t, c, r, "x"); err == nil {
		t.Fatalf("answer %q with no backend", got)
	}

	// Round robin over two backends.
	p.SetBackends([]string{a, b})
	seen := map[string]bool{}
	for i := range 4 {
		c, r := dial()
		got, err := ask(t, c, r, strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		seen[got[:1]] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Errorf("connections not spread: %v", seen)
	}

	// A dead backend is skipped.
	dead := "127.0.0.1:1"
	p.SetBackends([]string{dead, a})
	for range 2 {
		c, r := dial()
		if got, err := ask(t, c, r, "hi"); err != nil || got != "a:hi" {
			t.Fatalf("got %q, %v; want a:hi", got, err)
		}
	}

	// When no backend answers, the fallback takes the connection.
	p.SetBackends([]string{dead})
	p.SetFallback([]string{b})
	c, r = dial()
	if got, err := ask(t, c, r, "fb"); err != nil || got != "b:fb" {
		t.Fatalf("fallback: got %q, %v; want b:fb", got, err)
	}
	p.SetFallback(nil)

	// Repoint and close the old backend's connections.
	p.SetBackends([]string{a})
	old, oldR := dial()
	if got, _ := ask(t, old, oldR, "1"); got != "a:1" {
		t.Fatalf("got %q", got)
	}
	p.SetBackends([]string{b})
	if n := p.CloseConnectionsTo(a); n < 1 {
		t.Errorf("closed %d connections to a, want at least the open one", n)
	}
	if got, err := ask(t, old, oldR, "2"); err == nil {
		t.Errorf("old connection still answered %q", got)
	}
	c, r = dial()
	if got, _ := ask(t, c, r, "3"); got != "b:3" {
		t.Errorf("after repoint got %q, want b:3", got)
	}
}

func TestPortInUseSaysByWhom(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = Listen("writer", ln.Addr().String(), nil)
	if err == nil {
		t.Fatal("second listen succeeded")
	}
	if !strings.Contains(err.Error(), "already in use by") || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("error does not name this process: %v", err)
	}
}

// A port held on ::1 by another server (Debian's cluster listens on localhost, both families) is
// reported, so "localhost" cannot silently reach someone else.
func TestLoopbackConflictOnIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback on this machine:", err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	if _, err := ListenLoopback("writer", port, nil); err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("ListenLoopback on a port held on ::1: %v", err)
	}
	// And the IPv4 side was released again.
	v4, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("127.0.0.1:%d still held after the failed listen: %v", port, err)
	}
	v4.Close()
}
