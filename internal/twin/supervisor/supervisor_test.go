package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/internal/testkit/pgtest"
	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/secretstore"
	"github.com/jackc/pgx/v5"
)

// stateDir is a state directory the server account can reach (t.TempDir is 0700 root's).
func stateDir(t *testing.T) string {
	t.Helper()
	return filepath.Join(pgtest.ReachableDir(t, "sv"), "state")
}

func freePorts(t *testing.T) (int, int) {
	t.Helper()
	var ps []int
	for len(ps) < 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if p := ln.Addr().(*net.TCPAddr).Port; p >= 1150 {
			ps = append(ps, p)
		}
	}
	return ps[0], ps[1]
}

func testConfig(t *testing.T, stage string) apgstack.Config {
	cfg := apgstack.Default()
	cfg.Environment.Stage = stage
	cfg.Database.Port, cfg.Target.Local.ReaderPort = freePorts(t)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

type twin struct {
	cfg    apgstack.Config
	dir    string
	status api.Status
	cancel context.CancelFunc
	done   chan error
	sv     chan *Supervisor
}

// up runs a supervisor in-process until the test ends.
func up(t *testing.T, cfg apgstack.Config, dir string, tune ...func(*Options)) *twin {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tw := &twin{cfg: cfg, dir: dir, cancel: cancel, done: make(chan error, 1), sv: make(chan *Supervisor, 1)}
	ready := make(chan api.Status, 1)
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	opts := Options{Config: cfg, StateDir: dir, Log: log, DegradeAfter: 2 * time.Second, PollInterval: 200 * time.Millisecond,
		Serving: func(s *Supervisor) { tw.sv <- s }}
	for _, f := range tune {
		f(&opts)
	}
	go func() {
		tw.done <- Run(ctx, opts, func(st api.Status) { ready <- st })
	}()
	select {
	case tw.status = <-ready:
	case err := <-tw.done:
		cancel()
		t.Fatalf("supervisor failed: %v", err)
	}
	t.Cleanup(tw.down)
	return tw
}

func (tw *twin) down() {
	if tw.cancel == nil {
		return
	}
	tw.cancel()
	<-tw.done
	tw.cancel = nil
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (tw *twin) masterPassword(t *testing.T) string {
	store, err := secretstore.Open(Layout{Root: tw.dir}.SecretsDir())
	if err != nil {
		t.Fatal(err)
	}
	d, err := store.GetDatabase(bestpractice.SecretName(tw.cfg.Environment.Stage, tw.cfg.Database.StackName), secretstore.Current)
	if err != nil {
		t.Fatal(err)
	}
	return d.Password
}

// connect connects as the master user through an endpoint; the password goes in the config, not
// the connection string, so no error message can carry it.
func (tw *twin) connect(t *testing.T, port int, sslmode string) (*pgx.Conn, error) {
	t.Helper()
	cc, err := pgx.ParseConfig(fmt.Sprintf("host=localhost port=%d dbname=%s user=%s sslmode=%s sslrootcert=%s connect_timeout=10",
		port, tw.cfg.Database.Name, tw.cfg.Database.Username, sslmode, Layout{Root: tw.dir}.CABundle()))
	if err != nil {
		t.Fatal(err)
	}
	cc.Password = tw.masterPassword(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return pgx.ConnectConfig(ctx, cc)
}

func mustConnect(t *testing.T, tw *twin, port int) *pgx.Conn {
	t.Helper()
	c, err := tw.connect(t, port, "verify-full")
	if err != nil {
		t.Fatalf("connect through port %d with verify-full: %v", port, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// TestDev brings up a dev twin: TLS verify-full through the writer endpoint, plain text refused,
// every best-practice parameter as the server reports it, the bootstrap's extensions, the reader
// endpoint falling back to the writer, restart with the data kept, nothing left running after.
func TestDev(t *testing.T) {
	cfg := testConfig(t, "dev")
	dir := stateDir(t)
	tw := up(t, cfg, dir)
	ctx := context.Background()

	conn := mustConnect(t, tw, cfg.Database.Port)
	var ssl bool
	if err := conn.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil || !ssl {
		t.Fatalf("connection not encrypted: %v %v", ssl, err)
	}
	if _, err := tw.connect(t, cfg.Database.Port, "disable"); err == nil || !strings.Contains(err.Error(), "no pg_hba.conf entry") {
		t.Errorf("sslmode=disable: %v, want refused by pg_hba.conf", err)
	}
	checkParameters(t, conn)

	for _, ext := range bestpractice.Extensions {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_extension WHERE extname = $1", ext).Scan(&n); err != nil || n != 1 {
			t.Errorf("extension %s: installed %d, %v", ext, n, err)
		}
	}

	if _, err := conn.Exec(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before restart')"); err != nil {
		t.Fatal(err)
	}
	// Dev has no reader: the reader endpoint reaches the writer.
	rc := mustConnect(t, tw, cfg.ReaderPort())
	var inRecovery bool
	if err := rc.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil || inRecovery {
		t.Errorf("reader endpoint without readers: in recovery %v, %v; want the writer", inRecovery, err)
	}
	if len(tw.status.Instances) != 1 || tw.status.Instances[0].Role != api.RoleWriter || tw.status.Instances[0].WALPosition == "" {
		t.Errorf("status instances: %+v", tw.status.Instances)
	}
	if !strings.Contains(strings.Join(tw.status.MissingLibraries, ","), "pg_hint_plan") {
		t.Errorf("missing libraries not reported: %v", tw.status.MissingLibraries)
	}
	conn.Close(ctx)
	rc.Close(ctx)

	dataDir := filepath.Join(Layout{Root: dir}.InstanceDir(firstInstance), "data")
	tw.down()
	assertNothingRuns(t, dir)

	// Same state directory: same cluster, same data, same password.
	tw2 := up(t, cfg, dir)
	c2 := mustConnect(t, tw2, cfg.Database.Port)
	var v string
	if err := c2.QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != "before restart" {
		t.Errorf("after restart: %q, %v", v, err)
	}
	c2.Close(ctx)
	tw2.down()
	assertNothingRuns(t, dir)
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); err != nil {
		t.Errorf("data directory gone: %v", err)
	}
}

// checkParameters compares every best-practice parameter with pg_settings, in the parameter's
// own unit.
func checkParameters(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	params := append(append([]bestpractice.Parameter{}, bestpractice.ClusterParameters...), bestpractice.InstanceParameterGroup(apgstack.Default().Database.PgauditLog)...)
	for _, p := range params {
		if p.RDSOnly {
			continue
		}
		var setting, unit, vartype string
		err := conn.QueryRow(ctx, "SELECT setting, coalesce(unit, ''), vartype FROM pg_settings WHERE name = $1", p.Name).Scan(&setting, &unit, &vartype)
		if err != nil {
			t.Errorf("%s: not reported by the server: %v", p.Name, err)
			continue
		}
		want := p.Value
		switch {
		case p.Name == "shared_preload_libraries":
			var libs []string
			for _, l := range strings.Split(p.Value, ",") {
				if l != "pg_hint_plan" { // not installed on Debian 12: reported, not loaded
					libs = append(libs, l)
				}
			}
			want = strings.Join(libs, ",")
		case vartype == "bool":
			want = map[string]string{"1": "on", "0": "off"}[p.Value]
		case vartype == "integer" || vartype == "real":
			got, err := inUnit(setting, unit, p.Unit)
			if err != nil {
				t.Errorf("%s: %v", p.Name, err)
				continue
			}
			setting = got
		}
		if setting != want {
			t.Errorf("%s = %q (unit %q), want %q %s", p.Name, setting, unit, want, p.Unit)
		}
	}
	// rds.force_ssl's local meaning.
	var sslOn string
	if err := conn.QueryRow(ctx, "SHOW ssl").Scan(&sslOn); err != nil || sslOn != "on" {
		t.Errorf("ssl = %q, %v", sslOn, err)
	}
}

// inUnit converts a pg_settings value in the server's unit (8kB, ms, min, B, ...) to the
// parameter's unit.
func inUnit(setting, serverUnit, want string) (string, error) {
	n, err := strconv.ParseFloat(setting, 64)
	if err != nil {
		return "", err
	}
	factor := map[string]float64{"B": 1, "kB": 1024, "8kB": 8192, "MB": 1 << 20, "GB": 1 << 30,
		"ms": 1, "s": 1000, "min": 60000, "h": 3600000, "d": 86400000}
	if serverUnit == "" || want == "" {
		if serverUnit != want {
			return "", fmt.Errorf("unit %q on the server, %q in the data", serverUnit, want)
		}
		return setting, nil
	}
	from, ok1 := factor[serverUnit]
	to, ok2 := factor[want]
	if !ok1 || !ok2 {
		return "", fmt.Errorf("cannot convert %s to %s", serverUnit, want)
	}
	return strconv.FormatFloat(n*from/to, 'f', -1, 64), nil
}

// assertNothingRuns checks that no process uses the state directory: no postgres on its data
// directories (their command lines name them), nothing listening on its sockets.
func assertNothingRuns(t *testing.T, dir string) {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if strings.Contains(string(data), dir) {
			t.Errorf("process %s still runs on the state directory: %s", filepath.Base(filepath.Dir(p)), strings.ReplaceAll(string(data), "\x00", " "))
		}
	}
	if _, err := os.Stat(Layout{Root: dir}.Socket()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("API socket left behind: %v", err)
	}
}

// TestProd brings up a prod twin: a synchronous reader, a row written through the writer endpoint
// read through the reader endpoint, writes refused there, and the degrade rule when the reader
// dies: commits stall only for the bound, the cluster is recorded degraded with no promotable
// reader.
func TestProd(t *testing.T) {
	cfg := testConfig(t, "prod")
	dir := stateDir(t)
	tw := up(t, cfg, dir)
	ctx := context.Background()

	if len(tw.status.Instances) != 2 {
		t.Fatalf("instances: %+v", tw.status.Instances)
	}
	reader := tw.status.Instances[1]
	if reader.Role != api.RoleReader || reader.SyncState != "sync" || !reader.Promotable || tw.status.Degraded {
		t.Fatalf("reader: %+v, degraded %v", reader, tw.status.Degraded)
	}

	w := mustConnect(t, tw, cfg.Database.Port)
	if _, err := w.Exec(ctx, "CREATE TABLE t (id int); INSERT INTO t VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	// Synchronous commit: the row is on the reader once the commit returned; remote_apply is not
	// promised, so wait for replay.
	r := mustConnect(t, tw, cfg.ReaderPort())
	var id int
	for range 100 {
		if err := r.QueryRow(ctx, "SELECT id FROM t").Scan(&id); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if id != 42 {
		t.Fatalf("row written through the writer endpoint not read through the reader endpoint: %d", id)
	}
	var inRecovery bool
	if err := r.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil || !inRecovery {
		t.Errorf("reader endpoint reaches a server not in recovery: %v %v", inRecovery, err)
	}
	if _, err := r.Exec(ctx, "INSERT INTO t VALUES (1)"); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("write through the reader endpoint: %v, want refused as read-only", err)
	}
	r.Close(ctx)

	// Kill the reader: the next commit waits, then goes through once the supervisor degrades.
	if err := killProcess(findPID(t, tw.status, secondInstance)); err != nil {
		t.Fatal(err)
	}
	// A commit may still reach the dying reader's WAL receiver; keep committing until the
	// supervisor has degraded. Every commit must go through (none is refused or lost).
	var st State
	for i := 0; !st.Sync.Degraded; i++ {
		if i == 100 {
			t.Fatalf("never degraded: %+v", st.Sync)
		}
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		_, err := w.Exec(cctx, "INSERT INTO t VALUES ($1)", 100+i)
		cancel()
		if err != nil {
			t.Fatalf("commit after the reader died never went through: %v", err)
		}
		st, _, _ = LoadState(Layout{Root: dir})
	}
	if len(st.Sync.InSync) != 0 || st.Sync.DegradedSince == nil {
		t.Errorf("state after degrade: %+v", st.Sync)
	}
	events, _ := ReadEvents(Layout{Root: dir})
	found := false
	for _, ev := range events {
		found = found || strings.Contains(ev.Message, "replication degraded")
	}
	if !found {
		t.Errorf("no degraded event in %+v", events)
	}
	// The supervisor brings the dead reader back by itself (ReaderRestartDelay), as Aurora
	// replaces a failed instance; once caught up it is synchronous and in sync again.
	sv := <-tw.sv
	for i := 0; st.Sync.Degraded || len(st.Sync.InSync) == 0; i++ {
		if i == 600 {
			t.Fatalf("reader never back in sync: %+v", st.Sync)
		}
		time.Sleep(50 * time.Millisecond)
		st, _, _ = LoadState(Layout{Root: dir})
	}
	if _, err := w.Exec(ctx, "INSERT INTO t VALUES (44)"); err != nil {
		t.Fatalf("commit with the reader back: %v", err)
	}
	events, _ = ReadEvents(Layout{Root: dir})
	restarted := false
	for _, ev := range events {
		restarted = restarted || ev.SourceID == secondInstance && ev.Category == "recovery"
	}
	if !restarted {
		t.Errorf("no recovery event for the restarted reader in %+v", events)
	}
	full := sv.Status(ctx)
	if full.Degraded || !full.Instances[1].Promotable || full.Instances[1].SyncState != "sync" {
		t.Errorf("status after recovery: degraded %v, reader %+v", full.Degraded, full.Instances[1])
	}
	// The reader endpoint falls back to the writer when the reader is gone.
	if err := killProcess(findPID(t, full, secondInstance)); err != nil {
		t.Fatal(err)
	}
	// Connections made in the instant of the kill may fail, as they would on any server; wait
	// until the supervisor has seen it.
	for i := 0; sv.Status(ctx).Instances[1].State != api.StateFailed; i++ {
		if i == 600 {
			t.Fatal("reader death never noticed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	r2 := mustConnect(t, tw, cfg.ReaderPort())
	if err := r2.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil || inRecovery {
		t.Errorf("reader endpoint without a live reader: in recovery %v, %v", inRecovery, err)
	}
	r2.Close(ctx)
	w.Close(ctx)
	tw.down()
	assertNothingRuns(t, dir)
}

func findPID(t *testing.T, st api.Status, name string) int {
	for _, in := range st.Instances {
		if in.Name == name && in.PID > 0 {
			return in.PID
		}
	}
	t.Fatalf("no pid for %s in %+v", name, st.Instances)
	return 0
}

func killProcess(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}
