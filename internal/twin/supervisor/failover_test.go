package supervisor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/internal/testkit/pgtest"
	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/instance"
	"github.com/apgstack/apgstack/internal/twin/secretstore"
	"github.com/apgstack/apgstack/internal/writeload"
	"github.com/jackc/pgx/v5"
)

// haTwin is a running twin with its supervisor, a writing client through the writer endpoint,
// and a watcher of the writer endpoint's connections.
type haTwin struct {
	*twin
	sv   *Supervisor
	load *writeload.Load

	stopWatch func() int // stops the endpoint watcher; returns the most backends seen at once
}

func upHA(t *testing.T, stage string, tune ...func(*Options)) *haTwin {
	t.Helper()
	cfg := testConfig(t, stage)
	tw := up(t, cfg, stateDir(t), tune...)
	h := &haTwin{twin: tw, sv: <-tw.sv}
	h.stopWatch = h.watchEndpoint()
	t.Cleanup(func() { h.stopWatch() })
	return h
}

// watchEndpoint samples, as often as it can, how many instances the writer endpoint relays
// sessions to: more than one at any moment would be two writers behind the endpoint.
func (h *haTwin) watchEndpoint() func() int {
	stop := make(chan struct{})
	var most int
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			n := 0
			for _, c := range h.sv.writerEP.Connections() {
				if c > 0 {
					n++
				}
			}
			most = max(most, n)
			time.Sleep(200 * time.Microsecond)
		}
	})
	var once sync.Once
	return func() int {
		once.Do(func() { close(stop); wg.Wait() })
		return most
	}
}

// connConfig is the master user's configuration through the writer endpoint, TLS verify-full.
func (h *haTwin) connConfig(t *testing.T) *pgx.ConnConfig {
	t.Helper()
	cc, err := pgx.ParseConfig(fmt.Sprintf("host=localhost port=%d dbname=%s user=%s sslmode=verify-full sslrootcert=%s connect_timeout=5",
		h.cfg.Database.Port, h.cfg.Database.Name, h.cfg.Database.Username, Layout{Root: h.dir}.CABundle()))
	if err != nil {
		t.Fatal(err)
	}
	cc.Password = h.masterPassword(t)
	return cc
}

// startLoad creates the table and starts writing through the writer endpoint; it returns once n
// writes are acknowledged.
func (h *haTwin) startLoad(t *testing.T, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := mustConnect(t, h.twin, h.cfg.Database.Port)
	if err := writeload.Setup(ctx, conn, "load"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	l, err := writeload.Start(context.Background(), writeload.Options{Config: h.connConfig(t), Table: "load", OpTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Stop() })
	h.load = l
	if err := l.WaitAcked(ctx, n); err != nil {
		t.Fatal(err)
	}
}

// moreWrites waits for n more acknowledged writes.
func (h *haTwin) moreWrites(t *testing.T, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := h.load.WaitAcked(ctx, h.load.Stats().Acked+n); err != nil {
		t.Fatal(err)
	}
}

func (h *haTwin) writer(t *testing.T) api.Instance {
	t.Helper()
	for _, in := range h.sv.Status(context.Background()).Instances {
		if in.Role == api.RoleWriter {
			return in
		}
	}
	t.Fatal("no writer in the status")
	return api.Instance{}
}

// waitCluster waits until every instance runs, and prod's reader is in sync again.
func (h *haTwin) waitCluster(t *testing.T, want int) api.Status {
	t.Helper()
	ctx := context.Background()
	var st api.Status
	for i := 0; ; i++ {
		st = h.sv.Status(ctx)
		ok := len(st.Instances) == want && !st.Degraded
		for _, in := range st.Instances {
			ok = ok && in.State == api.StateRunning && (in.Role == api.RoleWriter || in.Promotable)
		}
		if ok {
			return st
		}
		if i == 1200 {
			t.Fatalf("cluster not back: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// finish stops the load and checks: every acknowledged id is on the writer, the endpoint never
// relayed to two instances at once, and the rows come from periods writers (failovers + 1), one
// server after the other.
func (h *haTwin) finish(t *testing.T, periods int) writeload.Stats {
	t.Helper()
	st := h.load.Stop()
	if most := h.stopWatch(); most > 1 {
		t.Errorf("the writer endpoint relayed sessions to %d instances at once", most)
	}
	ctx := context.Background()
	conn := mustConnect(t, h.twin, h.cfg.Database.Port)
	if err := h.load.Verify(ctx, conn); err != nil {
		t.Errorf("acknowledged writes lost: %v (stats %+v)", err, st)
	}
	// In commit order the rows must come from one server after the other, one run per writer
	// period: a server that wrote again after the next had begun would add runs.
	var runs int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM (SELECT server_port IS DISTINCT FROM lag(server_port) OVER (ORDER BY at, id) AS change FROM load) c WHERE change`).Scan(&runs); err != nil {
		t.Fatal(err)
	}
	if runs != periods {
		t.Errorf("rows come from %d writer periods in commit order, want %d", runs, periods)
	}
	t.Logf("writes: %d acknowledged, %d in doubt, %d errors, %d reconnects, outages %+v, errors %q", st.Acked, st.InDoubt, st.Errors, st.Reconnects, st.Outages, st.ErrorLog)
	return st
}

func (h *haTwin) events(t *testing.T) string {
	t.Helper()
	evs, err := ReadEvents(Layout{Root: h.dir})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "%s %s %s %s: %s\n", ev.Time.Format("15:04:05.000"), ev.SourceType, ev.SourceID, ev.Category, ev.Message)
	}
	return b.String()
}

func wantEvents(t *testing.T, events string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(events, w) {
			t.Errorf("no event %q in:\n%s", w, events)
		}
	}
}

// TestFailoverHung first stalls the writer's postmaster again and again, each time for less than
// the health check's timeout and for longer in all than a hung writer takes to be detected: new
// sessions are slow to start but do start, so no failover happens. Then it stops the postmaster
// (SIGSTOP): new sessions hang while old ones still answer, so the health checks time out; the
// supervisor fences it (sessions cut at the endpoint, every process killed) before it promotes
// the reader, and the old writer rejoins as a reader.
func TestFailoverHung(t *testing.T) {
	h := upHA(t, "prod")
	h.startLoad(t, 200)
	old := h.writer(t)

	stall := healthTimeout / 4
	bound := time.Duration(healthFailures) * (healthInterval + healthTimeout)
	for start := time.Now(); time.Since(start) < bound+healthTimeout; {
		if err := syscall.Kill(old.PID, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(stall)
		if err := syscall.Kill(old.PID, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		time.Sleep(stall / 3)
	}
	h.moreWrites(t, 100)
	if now := h.writer(t); now.Name != old.Name || now.PID != old.PID {
		t.Fatalf("writer %+v after a slow spell, want %s (pid %d) still", now, old.Name, old.PID)
	}
	if ev := h.events(t); strings.Contains(ev, "failover started") {
		t.Fatalf("a slow but answering writer was failed over:\n%s", ev)
	}

	// Every process of the hung writer (its backends are not in the postmaster's process
	// group) must be gone once it is fenced.
	oldProcs := (&instance.Instance{Dir: Layout{Root: h.dir}.InstanceDir(old.Name)}).Processes()
	if len(oldProcs) < 2 {
		t.Fatalf("the writer's processes: %v", oldProcs)
	}
	// Hang the whole server, as a frozen machine would: the postmaster and every child.
	for _, pid := range oldProcs {
		_ = syscall.Kill(pid, syscall.SIGSTOP)
	}
	t.Cleanup(func() {
		for _, pid := range oldProcs {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := h.load.WaitRecovered(ctx, 1); err != nil {
		t.Fatal(err)
	}
	h.moreWrites(t, 200)
	h.waitCluster(t, 2)
	h.moreWrites(t, 100)
	h.finish(t, 2)
	if w := h.writer(t); w.Name == old.Name {
		t.Errorf("writer is still %s", w.Name)
	}
	for _, pid := range oldProcs {
		if !gone(pid, 5*time.Second) {
			t.Errorf("process %d of the fenced writer still runs", pid)
		}
	}
	wantEvents(t, h.events(t), "failover started: writer "+old.Name+" failed: it failed 3 health checks in a row",
		"instance "+old.Name+" fenced", "failover completed: ", "promoted to writer", "instance "+old.Name+" rejoined as a reader")
}

// TestSwitchover switches the writer over and back through the API under a writing client: no
// acknowledged write is lost, the client sees no more than the cut of its session each time, and
// each old writer is a reader again when the call returns. Then the degrade rule: with the reader
// out of sync, a writer that dies is restarted in place rather than failed over to the reader.
// Last, a switchover with the reader down is refused and changes nothing.
func TestSwitchover(t *testing.T) {
	h := upHA(t, "prod")
	h.startLoad(t, 200)
	c := api.NewClient(Layout{Root: h.dir}.Socket())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for round := 1; round <= 2; round++ {
		old := h.writer(t)
		res, err := c.Failover(ctx, "")
		if err != nil {
			t.Fatalf("switchover %d: %v", round, err)
		}
		if res.Kind != api.FailoverPromote || !res.Planned || res.OldWriter != old.Name || res.NewWriter == old.Name || !res.Rejoined || res.WriterLSN == "" {
			t.Errorf("switchover %d: %+v", round, res)
		}
		if _, err := h.load.WaitRecovered(ctx, round); err != nil {
			t.Fatal(err)
		}
		h.moreWrites(t, 100)
		st := h.waitCluster(t, 2)
		for _, in := range st.Instances {
			if in.Name == old.Name && in.Role != api.RoleReader {
				t.Errorf("old writer: %+v, want a reader", in)
			}
		}
	}
	switched := h.load.Stats()

	// Degraded: the reader stops streaming, and once the bound has passed the writer commits
	// alone. A writer that dies now is restarted in place: the reader may lack acknowledged
	// writes, so it must not be promoted.
	var reader api.Instance
	for _, in := range h.sv.Status(ctx).Instances {
		if in.Role == api.RoleReader {
			reader = in
		}
	}
	setConninfo := func(sql string) {
		t.Helper()
		r := h.sv.topo.now().instances[reader.Name]
		conn, err := r.Connect(ctx, "postgres")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
			t.Fatal(err)
		}
	}
	setConninfo("ALTER SYSTEM SET primary_conninfo = ''")
	for !h.sv.Status(ctx).Degraded {
		if ctx.Err() != nil {
			t.Fatal("never degraded")
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.moreWrites(t, 100)
	w := h.writer(t)
	if err := syscall.Kill(w.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, err := h.load.WaitRecovered(ctx, 3); err != nil {
		t.Fatal(err)
	}
	h.moreWrites(t, 100)
	if now := h.writer(t); now.Name != w.Name {
		t.Errorf("degraded cluster: %s was promoted though not known to be in sync", now.Name)
	}
	setConninfo("ALTER SYSTEM RESET primary_conninfo")

	// Two switchovers, one restart in place: the writer's port changed twice.
	h.finish(t, 3)
	// One cut session per switchover: its transaction fails, the client reconnects, and the
	// endpoint holds the new session until the new writer serves it.
	if switched.Errors > 2 || len(switched.Outages) > 2 {
		t.Errorf("client saw %d errors in %d outages over two switchovers, want at most one each: %q", switched.Errors, len(switched.Outages), switched.ErrorLog)
	}
	for _, o := range switched.Outages {
		if strings.Contains(o.FirstError, "read-only") || strings.Contains(o.FirstError, "SQLSTATE 23") {
			t.Errorf("client error beyond a reconnect: %s", o.FirstError)
		}
	}
	t.Log(h.events(t))
	wantEvents(t, h.events(t), "switchover started: writer", "switchover completed: ", "replayed the old writer's last WAL position",
		"replication degraded", "writer "+w.Name+" restarted in place")

	// A target that is no reader is refused before anything happens.
	if _, err := c.Failover(ctx, h.writer(t).Name); err == nil || !strings.Contains(err.Error(), "is the writer already") {
		t.Errorf("switchover to the writer: %v", err)
	}
	if _, err := c.Failover(ctx, "nosuch"); err == nil || !strings.Contains(err.Error(), "no such instance") {
		t.Errorf("switchover to an unknown instance: %v", err)
	}
	// With its reader down, the cluster is left as it is rather than restarted.
	writer := h.writer(t)
	if err := syscall.Kill(findPID(t, h.sv.Status(ctx), reader.Name), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	readerState := func() string {
		for _, in := range h.sv.Status(ctx).Instances {
			if in.Name == reader.Name {
				return in.State
			}
		}
		return ""
	}
	for readerState() != api.StateFailed {
		if ctx.Err() != nil {
			t.Fatal("reader death never noticed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := c.Failover(ctx, ""); err == nil || !strings.Contains(err.Error(), "no reader can take over now") {
		t.Errorf("switchover with the reader down: %v", err)
	}
	if now := h.writer(t); now.PID != writer.PID {
		t.Errorf("writer %+v after a refused switchover, want pid %d unchanged", now, writer.PID)
	}
}

// TestFailoverDev: a single instance has no reader, so a killed writer restarts in place, as a
// single-instance Aurora cluster does; a planned failover is a clean restart.
func TestFailoverDev(t *testing.T) {
	h := upHA(t, "dev")
	h.startLoad(t, 200)
	old := h.writer(t)
	if err := syscall.Kill(old.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := h.load.WaitRecovered(ctx, 1); err != nil {
		t.Fatal(err)
	}
	h.moreWrites(t, 100)
	res, err := api.NewClient(Layout{Root: h.dir}.Socket()).Failover(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Kind != api.FailoverRestart || res.NewWriter != old.Name {
		t.Errorf("planned failover in dev: %+v", res)
	}
	h.moreWrites(t, 100)
	h.finish(t, 1)
	t.Log(h.events(t))
	if w := h.writer(t); w.Name != old.Name || w.State != api.StateRunning {
		t.Errorf("writer %+v", w)
	}
	wantEvents(t, h.events(t), "writer "+old.Name+" restarted in place")
}

// BenchmarkFailover measures, over b.N kills of the writer's postmaster in prod, the time from the
// kill to the first write acknowledged by the promoted reader (the end of the writing client's
// outage), and reports the median and the worst. Run with e.g. -bench Failover -benchtime=5x.
func BenchmarkFailover(b *testing.B) {
	cfg := apgstack.Default()
	cfg.Environment.Stage = "prod"
	var ports []int
	for len(ports) < 2 {
		p, err := freePort()
		if err != nil {
			b.Fatal(err)
		}
		if p >= 1150 && !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	cfg.Database.Port, cfg.Target.Local.ReaderPort = ports[0], ports[1]
	dir := filepath.Join(pgtest.ReachableDir(b, "bench"), "state")
	ctx, cancel := context.WithCancel(context.Background())
	svc := make(chan *Supervisor, 1)
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Config: cfg, StateDir: dir, DegradeAfter: 2 * time.Second, PollInterval: 200 * time.Millisecond,
			Serving: func(s *Supervisor) { svc <- s }}, func(api.Status) { close(ready) })
	}()
	select {
	case <-ready:
	case err := <-done:
		b.Fatal(err)
	}
	defer func() { cancel(); <-done }()
	sv := <-svc

	d, err := sv.store.GetDatabase(sv.SecretName(), secretstore.Current)
	if err != nil {
		b.Fatal(err)
	}
	cc, err := pgx.ParseConfig(fmt.Sprintf("host=localhost port=%d dbname=%s user=%s sslmode=verify-full sslrootcert=%s connect_timeout=5",
		cfg.Database.Port, d.DBName, d.Username, sv.layout.CABundle()))
	if err != nil {
		b.Fatal(err)
	}
	cc.Password = d.Password
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		b.Fatal(err)
	}
	if err := writeload.Setup(ctx, conn, "load"); err != nil {
		b.Fatal(err)
	}
	conn.Close(ctx)
	load, err := writeload.Start(ctx, writeload.Options{Config: cc, Table: "load", OpTimeout: 3 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer load.Stop()
	// wait waits until the killed writer is a running reader again, the other one the writer, and
	// the reader in sync, before the next kill.
	wait := func(killed string) {
		for i := 0; ; i++ {
			st := sv.Status(ctx)
			ok := len(st.Instances) == 2 && !st.Degraded
			for _, in := range st.Instances {
				ok = ok && in.State == api.StateRunning && (in.Role == api.RoleWriter || in.Promotable) &&
					(in.Name != killed || in.Role == api.RoleReader)
			}
			if ok {
				return
			}
			if i == 2400 {
				b.Fatalf("cluster not back: %+v", st)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	err = load.WaitAcked(wctx, 100)
	wcancel()
	if err != nil {
		b.Fatal(err)
	}

	var times []time.Duration
	for b.Loop() {
		var writer api.Instance
		for _, in := range sv.Status(ctx).Instances {
			if in.Role == api.RoleWriter {
				writer = in
			}
		}
		// The client's next outage starts when the fence cuts its session; it ends with the first
		// write the new writer acknowledges.
		outages := len(load.Stats().Outages)
		kill := time.Now()
		if err := syscall.Kill(writer.PID, syscall.SIGKILL); err != nil {
			b.Fatalf("kill writer %+v: %v", writer, err)
		}
		wctx, wcancel := context.WithTimeout(ctx, time.Minute)
		o, err := load.WaitRecovered(wctx, outages+1)
		wcancel()
		if err != nil {
			b.Fatal(err)
		}
		times = append(times, o.RecoveredAt.Sub(kill))
		b.StopTimer()
		wait(writer.Name)
		b.StartTimer()
	}
	st := load.Stop()
	vctx, vcancel := context.WithTimeout(ctx, time.Minute)
	defer vcancel()
	if conn, err = pgx.ConnectConfig(vctx, cc); err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := load.Verify(vctx, conn); err != nil {
		b.Errorf("acknowledged writes lost: %v", err)
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "ms-median")
	b.ReportMetric(float64(times[len(times)-1].Microseconds())/1000, "ms-worst")
	b.Logf("kill to first acknowledged write: %v (%d writes, %d errors)", times, st.Acked, st.Errors)
}

// TestFailoverKill kills the writer's postmaster (SIGKILL) under a writing client in prod: the
// in-sync reader is promoted, writes go on through the same endpoint, and every acknowledged write
// is there (synchronous replication). The twin is then stopped before the old writer rejoined:
// the next start rewinds it and brings it up as a reader, with every acknowledged write kept.
func TestFailoverKill(t *testing.T) {
	release := make(chan struct{})
	h := upHA(t, "prod", func(o *Options) { o.BeforeRejoin = func() { <-release } })
	h.startLoad(t, 200)
	old := h.writer(t)
	if err := syscall.Kill(old.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := h.load.WaitRecovered(ctx, 1); err != nil {
		t.Fatal(err)
	}
	h.moreWrites(t, 200)
	if w := h.writer(t); w.Name == old.Name {
		t.Errorf("writer is still %s after its postmaster was killed", w.Name)
	}
	h.load.Stop()
	if most := h.stopWatch(); most > 1 {
		t.Errorf("the writer endpoint relayed sessions to %d instances at once", most)
	}
	wantEvents(t, h.events(t), "failover started: writer "+old.Name+" failed: its postmaster exited",
		"instance "+old.Name+" fenced", "failover completed: ", "promoted to writer")
	// While its rejoin is held, status says the old writer is on its way back, not failed.
	newWriter := h.writer(t).Name
	for _, in := range h.sv.Status(ctx).Instances {
		if in.Name == old.Name && (in.State != api.StateStarting || in.Error != "rejoining as a reader of "+newWriter) {
			t.Errorf("old writer while its rejoin waits: state %s, %q", in.State, in.Error)
		}
	}
	// Stop the supervisor while the rejoin waits; it gives up once stopped.
	h.cancel()
	close(release)
	<-h.done
	h.cancel = nil
	pending, err := (&Supervisor{layout: Layout{Root: h.dir}}).pendingRejoins()
	if err != nil || !slices.Equal(pending, []string{old.Name}) {
		t.Fatalf("pending rejoins %v, %v; want [%s]", pending, err, old.Name)
	}

	tw := up(t, h.cfg, h.dir)
	h2 := &haTwin{twin: tw, sv: <-tw.sv, load: h.load}
	h2.stopWatch = h2.watchEndpoint()
	st := h2.waitCluster(t, 2)
	for _, in := range st.Instances {
		if in.Name == old.Name && in.Role != api.RoleReader {
			t.Errorf("old writer after restart: %+v", in)
		}
	}
	h2.finish(t, 2)
	if pending, _ := h2.sv.pendingRejoins(); len(pending) != 0 {
		t.Errorf("pending rejoins after start: %v", pending)
	}
	wantEvents(t, h2.events(t), "instance "+old.Name+" rejoins as a reader of")
}

// gone reports whether pid has ended within limit. A killed process that its new parent (init)
// has not reaped yet is a zombie: it runs nothing, so it counts as gone.
func gone(pid int, limit time.Duration) bool {
	for deadline := time.Now().Add(limit); ; time.Sleep(20 * time.Millisecond) {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return true
		}
		// The state follows the command name in parentheses: "pid (comm) Z ...".
		if i := strings.LastIndexByte(string(data), ')'); i > 0 && i+2 < len(data) && data[i+2] == 'Z' {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}
