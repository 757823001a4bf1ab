package instance

import (
	"context"
	"errors"
	"net"
	"os/user"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/apgstack/apgstack/internal/runas"
	"github.com/apgstack/apgstack/internal/testkit/pgtest"
	"github.com/apgstack/apgstack/internal/twin/postgres"
)

// cluster makes instances in a directory the server account can reach (t.TempDir is root's
// 0700).
type cluster struct {
	t    *testing.T
	dir  string
	bin  Binaries
	acct *runas.Account
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	bin, _, err := FindBinaries(context.Background(), 15, false)
	if errors.Is(err, ErrNotInstalled) {
		t.Skip("no PostgreSQL server installed")
	}
	if err != nil {
		t.Fatal(err)
	}
	acct, err := runas.Resolve("")
	if err != nil {
		t.Skip(err)
	}
	return &cluster{t: t, dir: pgtest.ReachableDir(t, "inst"), bin: bin, acct: acct}
}

func (c *cluster) instance(name string) *Instance {
	c.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	i := &Instance{Name: name, Dir: filepath.Join(c.dir, name), Port: port, Bin: c.bin, Acct: c.acct}
	if err := i.Prepare(); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = i.Stop(ctx)
	})
	return i
}

// configure writes the files the supervisor writes (without TLS), following primary when set.
func (c *cluster) configure(i, primary *Instance) {
	c.t.Helper()
	srv := postgres.Server{Name: i.Name, Port: i.Port, SocketDir: i.SocketDir()}
	if primary != nil {
		srv.Primary = &postgres.Primary{SocketDir: primary.SocketDir(), Port: primary.Port, Slot: i.Name}
	}
	users := []string{c.acct.Name}
	if u, err := user.Current(); err == nil {
		users = append(users, u.Username)
	}
	for name, data := range map[string]string{"postgresql.conf": postgres.Conf(postgres.Plan{}, srv), "pg_hba.conf": postgres.HBA(false), "pg_ident.conf": postgres.Ident(users)} {
		if err := i.WriteFile(name, []byte(data)); err != nil {
			c.t.Fatal(err)
		}
	}
}

func execSQL(t *testing.T, ctx context.Context, i *Instance, sql string) {
	t.Helper()
	conn, err := i.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s on %s: %v", sql, i.Name, err)
	}
}

// eventually retries check until it holds (a reloaded setting reaches new sessions shortly after
// pg_reload_conf returns).
func eventually(t *testing.T, what string, check func() (bool, error)) {
	t.Helper()
	var err error
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(50 * time.Millisecond) {
		var ok bool
		if ok, err = check(); ok {
			return
		}
	}
	t.Fatalf("%s: not within 10 s (last error %v)", what, err)
}

// The primitives a switchover is made of, in its order, on real servers: a writer and a reader
// streaming through a slot; the writer drained and stopped, the reader caught up past its
// shutdown checkpoint and promoted; the old writer rewound and started as a standby of the new
// one; then fenced.
func TestPrimitivesOnRealServers(t *testing.T) {
	c := newCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	w, r := c.instance("w"), c.instance("r")
	if err := w.InitDB(ctx); err != nil {
		t.Fatal(err)
	}
	c.configure(w, nil)
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}

	t.Log("slots")
	for range 2 { // twice: the second finds it
		if err := w.EnsureSlot(ctx, "r"); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.EnsureSlot(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := w.DropSlot(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if slots, err := w.Slots(ctx); err != nil || !slices.Equal(slots, []Slot{{Name: "r", Physical: true}}) {
		t.Fatalf("Slots = %v, %v; want r, physical, inactive", slots, err)
	}

	t.Log("a reader from a base backup, started as a standby")
	if err := r.BaseBackup(ctx, w, "r"); err != nil {
		t.Fatal(err)
	}
	c.configure(r, w)
	if err := r.StartStandby(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.WaitStreaming(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if slots, err := w.Slots(ctx); err != nil || len(slots) != 1 || !slots[0].Active {
		t.Fatalf("Slots while the reader streams = %v, %v; want r active", slots, err)
	}
	reps, current, err := w.Replication(ctx)
	if err != nil || reps["r"].State != "streaming" || current <= 0 {
		t.Fatalf("Replication = %+v, %d, %v", reps, current, err)
	}
	if h, err := r.Health(ctx); err != nil || !h.InRecovery {
		t.Fatalf("reader health %+v, %v: want in recovery", h, err)
	}
	if !r.StandbySignal() || w.StandbySignal() {
		t.Fatalf("standby.signal: reader %v, writer %v", r.StandbySignal(), w.StandbySignal())
	}

	t.Log("synchronous_standby_names")
	for _, name := range []string{"r", ""} {
		if err := w.SetSynchronousStandby(ctx, name); err != nil {
			t.Fatal(err)
		}
		eventually(t, "synchronous_standby_names = "+name, func() (bool, error) {
			got, err := w.SynchronousStandby(ctx)
			return got == name, err
		})
	}

	t.Log("drain, replay, clean stop, last checkpoint")
	execSQL(t, ctx, w, "CREATE TABLE t AS SELECT 1 AS x")
	lsn, err := w.Drain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.WaitReplayed(ctx, lsn, false); err != nil {
		t.Fatal(err)
	}
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	final, err := w.LastCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := mustLSN(t, lsn), mustLSN(t, final); b < a {
		t.Errorf("shutdown checkpoint %s before the drained position %s", final, lsn)
	}
	if err := r.WaitReplayed(ctx, final, true); err != nil {
		t.Fatal(err)
	}

	t.Log("promote")
	if err := r.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	if h, err := r.Health(ctx); err != nil || h.InRecovery {
		t.Fatalf("promoted reader health %+v, %v: want a writer", h, err)
	}
	if r.StandbySignal() {
		t.Error("standby.signal left after the promotion")
	}
	if err := r.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if cd, err := r.ControlData(ctx); err != nil || cd.Timeline != 2 || cd.State != "in production" {
		t.Fatalf("ControlData of the new writer = %+v, %v; want timeline 2 in production", cd, err)
	}
	if _, err := r.LastCheckpoint(ctx); err == nil {
		t.Error("LastCheckpoint of a running server: no error")
	}

	t.Log("the old writer rewinds and follows the new one")
	out, err := w.Rewind(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pg_rewind: %s", out)
	if err := w.PrepareStandby(); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(w.DataDir(), "pg_replslot", "*")); len(left) != 0 {
		t.Fatalf("slots left in the old writer's data: %v", left)
	}
	if err := r.EnsureSlot(ctx, "w"); err != nil {
		t.Fatal(err)
	}
	c.configure(w, r)
	if err := w.StartStandby(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.WaitStreaming(ctx, "w"); err != nil {
		t.Fatal(err)
	}

	t.Log("suspended, then fenced")
	if err := syscall.Kill(w.PID(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Suspended after SIGSTOP", func() (bool, error) { return w.Suspended(), nil })
	if err := w.Fence(); err != nil {
		t.Fatal(err)
	}
	if w.Running() || len(w.Processes()) != 0 {
		t.Fatalf("after Fence: running %v, processes %v", w.Running(), w.Processes())
	}
	if r.Suspended() || !r.Running() {
		t.Fatal("fencing one server touched the other")
	}
}

func TestRewindWithoutData(t *testing.T) {
	i := &Instance{Name: "x", Dir: t.TempDir()}
	if _, err := i.Rewind(context.Background(), &Instance{Name: "w"}); !errors.Is(err, ErrRewind) {
		t.Fatalf("Rewind without data: %v, want ErrRewind", err)
	}
}

func TestParseLSN(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		bad  bool
	}{
		{in: "0/0", want: 0},
		{in: "0/16B3748", want: 0x16B3748},
		{in: "1/0", want: 1 << 32},
		{in: "FFFFFFFF/FFFFFFFF", want: 1<<64 - 1},
		{in: "", bad: true},
		{in: "16B3748", bad: true},
		{in: "x/1", bad: true},
		{in: "1/100000000", bad: true},
	}
	for _, tt := range tests {
		got, err := ParseLSN(tt.in)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("ParseLSN(%q) = %d, %v; want %d (error: %v)", tt.in, got, err, tt.want, tt.bad)
		}
	}
}

func mustLSN(t *testing.T, s string) uint64 {
	t.Helper()
	n, err := ParseLSN(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
