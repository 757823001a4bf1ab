package endpoint

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// kernelForTest is a uniquely named table, removed when the test ends; the test is skipped where
// the kernel path cannot run (not root, no nft).
func kernelForTest(t *testing.T) Kernel {
	t.Helper()
	k := Kernel{Table: TableName(fmt.Sprintf("%s-%d-%s", t.Name(), os.Getpid(), t.TempDir()))}
	if why := k.KernelUnavailable(context.Background()); why != "" {
		t.Skipf("kernel path unavailable: %s", why)
	}
	t.Cleanup(func() {
		if err := k.Remove(context.Background()); err != nil {
			t.Errorf("remove table: %v", err)
		}
	})
	return k
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// freePort is a loopback port nothing listens on: the redirect happens before the connection
// reaches any socket, so the public port needs no listener.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return portOf(t, ln.Addr().String())
}

func dialAsk(t *testing.T, host string, port int) (net.Conn, *bufio.Reader, string) {
	t.Helper()
	c, err := net.Dial("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("dial %s:%d: %v", host, port, err)
	}
	r := bufio.NewReader(c)
	got, err := ask(t, c, r, "hi")
	if err != nil {
		t.Fatalf("ask via %s:%d: %v", host, port, err)
	}
	who, _, _ := strings.Cut(got, ":")
	return c, r, who
}

// TestKernelRedirect: the writer endpoint follows a switchover for new connections while an
// established one stays with the old writer; the reader endpoint spreads; removing the table
// leaves the public port unserved (nothing listens there).
func TestKernelRedirect(t *testing.T) {
	k := kernelForTest(t)
	ctx := context.Background()
	a, b, c := portOf(t, backend(t, "a")), portOf(t, backend(t, "b")), portOf(t, backend(t, "c"))
	writer, reader := freePort(t), freePort(t)

	if err := k.Apply(ctx, []Route{{Port: writer, Targets: []int{a}}, {Port: reader, Targets: []int{b, c}}}); err != nil {
		t.Fatal(err)
	}
	old, oldR, who := dialAsk(t, "127.0.0.1", writer)
	defer old.Close()
	if who != "a" {
		t.Fatalf("writer endpoint reached %q, want a", who)
	}
	seen := map[string]bool{}
	for range 4 {
		conn, _, who := dialAsk(t, "127.0.0.1", reader)
		conn.Close()
		seen[who] = true
	}
	if !seen["b"] || !seen["c"] || len(seen) != 2 {
		t.Fatalf("reader endpoint reached %v, want both b and c", seen)
	}

	// Switchover: b is the new writer.
	if err := k.Apply(ctx, []Route{{Port: writer, Targets: []int{b}}, {Port: reader, Targets: []int{c}}}); err != nil {
		t.Fatal(err)
	}
	conn, _, who := dialAsk(t, "127.0.0.1", writer)
	conn.Close()
	if who != "b" {
		t.Fatalf("writer endpoint after switchover reached %q, want b", who)
	}
	if got, err := ask(t, old, oldR, "still"); err != nil || got != "a:still" {
		t.Fatalf("established connection after the change: %q, %v; want a:still", got, err)
	}

	if ok, err := k.Exists(ctx); err != nil || !ok {
		t.Fatalf("table present = %v, %v; want true", ok, err)
	}
	if err := k.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := k.Exists(ctx); err != nil || ok {
		t.Fatalf("table present after remove = %v, %v; want false", ok, err)
	}
	if conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(writer))); err == nil {
		conn.Close()
		t.Fatal("writer port still answers after the table was removed")
	}
	if err := k.Remove(ctx); err != nil {
		t.Fatalf("removing an absent table: %v", err)
	}
}

// TestKernelRedirectIPv6: clients resolving localhost to ::1 are redirected too.
func TestKernelRedirectIPv6(t *testing.T) {
	k := kernelForTest(t)
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	addr := serveEcho(t, ln, "v6")
	public := freePort(t)
	if err := k.Apply(context.Background(), []Route{{Port: public, Targets: []int{portOf(t, addr)}}}); err != nil {
		t.Fatal(err)
	}
	conn, _, who := dialAsk(t, "::1", public)
	conn.Close()
	if who != "v6" {
		t.Fatalf("::1 endpoint reached %q, want v6", who)
	}
}

// TestKernelTwoTwins: one twin's change and removal leave the other twin's table alone.
func TestKernelTwoTwins(t *testing.T) {
	one, two := kernelForTest(t), kernelForTest(t)
	if one.Table == two.Table {
		t.Fatalf("two twins share table %s", one.Table)
	}
	ctx := context.Background()
	a := portOf(t, backend(t, "a"))
	p1, p2 := freePort(t), freePort(t)
	if err := one.Apply(ctx, []Route{{Port: p1, Targets: []int{a}}}); err != nil {
		t.Fatal(err)
	}
	if err := two.Apply(ctx, []Route{{Port: p2, Targets: []int{a}}}); err != nil {
		t.Fatal(err)
	}
	if err := one.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	conn, _, who := dialAsk(t, "127.0.0.1", p2)
	conn.Close()
	if who != "a" {
		t.Fatalf("second twin's endpoint reached %q after the first's removal, want a", who)
	}
}

// TestKernelUnavailable: without nft the kernel path says why (the caller then keeps the proxy).
func TestKernelUnavailable(t *testing.T) {
	k := Kernel{Table: "apgstack_test", NFT: "/nonexistent/nft"}
	why := k.KernelUnavailable(context.Background())
	if os.Geteuid() == 0 && !strings.Contains(why, "not found") {
		t.Fatalf("reason = %q, want nft not found", why)
	}
	if why == "" {
		t.Fatal("kernel path reported usable without nft")
	}
}

func TestKernelScriptRefusesBadInput(t *testing.T) {
	for _, tc := range []struct {
		name   string
		k      Kernel
		routes []Route
		want   string
	}{
		{"table", Kernel{Table: "x; flush ruleset"}, nil, "allowed are letters"},
		{"port", Kernel{Table: "t"}, []Route{{Port: 70000, Targets: []int{1}}}, "endpoint port 70000"},
		{"target", Kernel{Table: "t"}, []Route{{Port: 5432, Targets: []int{0}}}, "target port 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.k.script(tc.routes)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestKernelRemoveOrphans: a table names its twin's state directory in its comment; the sweep
// removes the table of a twin whose directory is gone and leaves a live twin's table and its own.
func TestKernelRemoveOrphans(t *testing.T) {
	kernelForTest(t) // skips where nft cannot be used
	ctx := context.Background()
	base := t.TempDir()
	gone, live, self := ForTwin(filepath.Join(base, "gone")), ForTwin(filepath.Join(base, "live")), ForTwin(filepath.Join(base, "self"))
	for _, k := range []Kernel{gone, live, self} {
		t.Cleanup(func() { _ = k.Remove(context.Background()) })
		if err := k.Apply(ctx, []Route{{Port: freePort(t), Targets: []int{freePort(t)}}}); err != nil {
			t.Fatal(err)
		}
	}
	body, err := exec.Command("nft", "list", "table", "inet", gone.Table).CombinedOutput()
	if err != nil || !strings.Contains(string(body), `comment "apgstack twin `+gone.Owner+`"`) {
		t.Fatalf("table %s does not name its twin (%v):\n%s", gone.Table, err, body)
	}
	removed, err := self.RemoveOrphans(ctx, func(dir string) bool { return dir != gone.Owner })
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != gone.Owner {
		t.Errorf("removed %v, want only %s", removed, gone.Owner)
	}
	for _, c := range []struct {
		k    Kernel
		want bool
	}{{gone, false}, {live, true}, {self, true}} {
		if ok, err := c.k.Exists(ctx); err != nil || ok != c.want {
			t.Errorf("table of %s exists = %v (%v), want %v", c.k.Owner, ok, err, c.want)
		}
	}
}
