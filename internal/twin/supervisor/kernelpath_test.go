package supervisor

import (
	"context"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/endpoint"
)

// serverOf reports which server a new connection through port reached.
func serverOf(t *testing.T, tw *twin, port int) (serverPort int, recovery bool) {
	t.Helper()
	c := mustConnect(t, tw, port)
	if err := c.QueryRow(context.Background(), "SELECT inet_server_port(), pg_is_in_recovery()").Scan(&serverPort, &recovery); err != nil {
		t.Fatal(err)
	}
	c.Close(context.Background())
	return serverPort, recovery
}

// TestEndpointsKernelPath: on the kernel path each endpoint reaches the right server, new
// connections follow a switchover and a SIGKILL failover, and down removes the table.
func TestEndpointsKernelPath(t *testing.T) {
	k := endpoint.Kernel{Table: "probe"}
	if why := k.KernelUnavailable(context.Background()); why != "" {
		t.Skipf("kernel path unavailable: %s", why)
	}
	h := upHA(t, "prod")
	kt := endpoint.Kernel{Table: endpoint.TableName(h.dir)}
	t.Cleanup(func() { _ = kt.Remove(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st := h.waitCluster(t, 2)
	for _, e := range st.Endpoints {
		if e.Path != endpoint.PathKernel {
			t.Fatalf("endpoint %s: path %s (%s), want kernel", e.Name, e.Path, e.PathReason)
		}
	}
	check := func(when string) {
		t.Helper()
		w := h.writer(t)
		if p, rec := serverOf(t, h.twin, h.cfg.Database.Port); p != w.Port || rec {
			t.Errorf("%s: writer endpoint reached port %d (recovery %v), want writer %s on %d", when, p, rec, w.Name, w.Port)
		}
		if p, rec := serverOf(t, h.twin, h.cfg.ReaderPort()); p == w.Port || !rec {
			t.Errorf("%s: reader endpoint reached port %d (recovery %v), want a reader", when, p, rec)
		}
	}
	check("start")

	// ::1 too: the rule keeps the address family, so the server listens on ::1 as well.
	if ln, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		ln.Close()
		cc, err := pgx.ParseConfig(fmt.Sprintf("host=::1 port=%d dbname=%s user=%s sslmode=verify-full sslrootcert=%s connect_timeout=10",
			h.cfg.Database.Port, h.cfg.Database.Name, h.cfg.Database.Username, Layout{Root: h.dir}.CABundle()))
		if err != nil {
			t.Fatal(err)
		}
		cc.Password = h.masterPassword(t)
		c6, err := pgx.ConnectConfig(ctx, cc)
		if err != nil {
			t.Fatalf("writer endpoint on ::1 (kernel path, verify-full): %v", err)
		}
		var port int
		var server string
		if err := c6.QueryRow(ctx, "SELECT inet_server_port(), host(inet_server_addr())").Scan(&port, &server); err != nil {
			t.Fatal(err)
		}
		c6.Close(ctx)
		if w := h.writer(t); port != w.Port || server != "::1" {
			t.Errorf("writer endpoint on ::1 reached %s port %d, want ::1 port %d (%s)", server, port, w.Port, w.Name)
		}
	}

	// The connections bypass the proxy: status counts them on the servers behind the endpoint.
	held := mustConnect(t, h.twin, h.cfg.Database.Port)
	st = h.sv.Status(context.Background())
	held.Close(context.Background())
	for _, e := range st.Endpoints {
		if e.Name == "writer" && e.Connections < 1 {
			t.Errorf("writer endpoint on the kernel path counts %d connections with one held open", e.Connections)
		}
	}

	c := api.NewClient(Layout{Root: h.dir}.Socket())
	if _, err := c.Failover(ctx, ""); err != nil {
		t.Fatalf("switchover: %v", err)
	}
	h.waitCluster(t, 2)
	check("after switchover")

	old := h.writer(t)
	if err := syscall.Kill(old.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for h.writer(t).Name == old.Name || h.writer(t).State != api.StateRunning {
		if ctx.Err() != nil {
			t.Fatal("no failover after SIGKILL")
		}
		time.Sleep(100 * time.Millisecond)
	}
	w := h.writer(t)
	if p, rec := serverOf(t, h.twin, h.cfg.Database.Port); p != w.Port || rec {
		t.Errorf("after SIGKILL: writer endpoint reached port %d (recovery %v), want %s on %d", p, rec, w.Name, w.Port)
	}

	h.down()
	if ok, err := kt.Exists(context.Background()); err != nil || ok {
		t.Errorf("table %s present after down = %v, %v; want false", kt.Table, ok, err)
	}
}
