// Package twintest starts a local Aurora PostgreSQL twin for a Go test: a real PostgreSQL
// writer (and, for pre-prod and prod, a streaming reader) behind writer and reader endpoints
// with TLS, run in-process by the same supervisor as `apgstack up`, in a fresh state directory.
// A test connects with DSN (verify-full TLS against CAFile; the password in a 0600 password
// file, never in the string), injects faults with Inject (the faults of `apgstack chaos`), and
// waits with WaitWhole until the twin is whole again. Start stops the twin in t.Cleanup.
//
// It needs PostgreSQL's server binaries on the machine (as `apgstack up` does). Run as root,
// the servers run as the postgres account; as an ordinary user, as that user.
package twintest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/internal/twin"
	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/statedir"
)

// Faults Inject knows; see `apgstack chaos --help` for how each is produced.
const (
	CrashWriter      = api.ChaosCrashWriter      // SIGKILL of the writer: a failover follows
	HangWriter       = api.ChaosHangWriter       // SIGSTOP of the writer's postmaster for a while
	CrashReader      = api.ChaosCrashReader      // SIGKILL of the reader: it is restarted
	StallReplication = api.ChaosStallReplication // the reader receives nothing for a while
	DropConnections  = api.ChaosDropConnections  // every client session is terminated
)

// Roles whose DSN and credentials a twin gives: the master user and the bootstrap's roles.
const (
	Master    = "master"
	Owner     = "owner"
	ReadWrite = "rw"
	ReadOnly  = "ro"
)

// Options choose the twin.
type Options struct {
	// Stage is dev or test (one instance), pre-prod or prod (a writer and a reader; prod with
	// synchronous replication, so that no acknowledged write is lost in a failover). Default dev.
	Stage string
	// Configure, when set, changes the configuration before the start (ports are chosen already).
	Configure func(*apgstack.Config)
	// StateDir is where the twin keeps its state; New's default is a new temporary directory
	// removed by Close; Start's is under t.TempDir().
	StateDir string
	// Log receives the supervisor's log (default: discarded; Start: warnings to t.Log).
	Log *slog.Logger
}

// Twin is a running twin.
type Twin struct {
	cfg    apgstack.Config
	dir    string
	remove string // a directory Close removes
	cancel context.CancelFunc
	done   chan error
	closed bool
}

// Start starts a twin for t and stops it when the test ends; it fails the test if it cannot.
func Start(t testing.TB, o Options) *Twin {
	t.Helper()
	if o.StateDir == "" {
		base := t.TempDir()
		// The server account (root runs the servers as postgres) must reach the state directory:
		// open the test's own temporary directories for traversal.
		for _, d := range []string{base, filepath.Dir(base)} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		o.StateDir = filepath.Join(base, "state")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(tbWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tw, err := New(ctx, o)
	if err != nil {
		t.Fatalf("twintest: %v", err)
	}
	t.Cleanup(func() {
		if err := tw.Close(); err != nil {
			t.Errorf("twintest: stop: %v", err)
		}
	})
	return tw
}

type tbWriter struct{ t testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// New starts a twin and returns once it serves; Close stops it. Start is the test's shortcut.
func New(ctx context.Context, o Options) (*Twin, error) {
	cfg := apgstack.Default()
	if o.Stage != "" {
		cfg.Environment.Stage = o.Stage
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	cfg.Database.Port, cfg.Target.Local.ReaderPort = ports[0], ports[1]
	if o.Configure != nil {
		o.Configure(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tw := &Twin{cfg: cfg, dir: o.StateDir, done: make(chan error, 1)}
	if tw.dir == "" {
		base, err := os.MkdirTemp("", "apgstack-twintest-*")
		if err != nil {
			return nil, err
		}
		if err := os.Chmod(base, 0o755); err != nil {
			os.RemoveAll(base)
			return nil, err
		}
		tw.remove, tw.dir = base, filepath.Join(base, "state")
	}
	if !filepath.IsAbs(tw.dir) {
		return nil, fmt.Errorf("twintest: state directory %q: an absolute path is needed", tw.dir)
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	tw.cancel = cancel
	ready := make(chan struct{})
	go func() {
		// As `apgstack supervise` runs it, in this process; short polls make a test's failover quick.
		tw.done <- twin.Supervise(runCtx, twin.Options{Config: cfg, StateDir: tw.dir, Log: log,
			DegradeAfter: 2 * time.Second, PollInterval: 200 * time.Millisecond}, nil,
			func(api.Status) { close(ready) })
	}()
	select {
	case <-ready:
		return tw, nil
	case err := <-tw.done:
		cancel()
		tw.cleanup()
		return nil, fmt.Errorf("twintest: start: %w", err)
	case <-ctx.Done():
		cancel()
		<-tw.done
		tw.cleanup()
		return nil, ctx.Err()
	}
}

func freePorts(n int) ([]int, error) {
	var ports []int
	for len(ports) < n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Close stops the twin's servers and endpoints (and removes the state directory New made).
func (tw *Twin) Close() error {
	if tw.closed {
		return nil
	}
	tw.closed = true
	tw.cancel()
	err := <-tw.done
	tw.cleanup()
	return err
}

func (tw *Twin) cleanup() {
	if tw.remove != "" {
		os.RemoveAll(tw.remove)
	}
}

// Config is the twin's configuration (the ports chosen).
func (tw *Twin) Config() apgstack.Config { return tw.cfg }

// StateDir is the twin's state directory.
func (tw *Twin) StateDir() string { return tw.dir }

// CAFile is the CA bundle that verifies the endpoints' certificates.
func (tw *Twin) CAFile() string { return statedir.Layout{Root: tw.dir}.CABundle() }

// DSN is a libpq/pgx connection string to the writer endpoint, or the reader endpoint, for a
// role (Master, Owner, ReadWrite, ReadOnly): TLS verify-full, the password in a password file.
func (tw *Twin) DSN(reader bool, role string) (string, error) {
	env, err := twin.Env(tw.cfg, tw.dir, reader, role)
	if err != nil {
		return "", err
	}
	keys := map[string]string{"PGHOST": "host", "PGPORT": "port", "PGDATABASE": "dbname", "PGUSER": "user",
		"PGSSLMODE": "sslmode", "PGSSLROOTCERT": "sslrootcert", "PGPASSFILE": "passfile"}
	var parts []string
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if key, ok := keys[k]; ok {
			parts = append(parts, key+"='"+strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v)+"'")
		}
	}
	return strings.Join(parts, " ") + " connect_timeout=10", nil
}

// Credentials are a role's current user name and password (they change when the secret rotates).
func (tw *Twin) Credentials(role string) (user, password string, err error) {
	env, err := twin.Env(tw.cfg, tw.dir, false, role)
	if err != nil {
		return "", "", err
	}
	for _, kv := range env {
		if path, ok := strings.CutPrefix(kv, "PGPASSFILE="); ok {
			return readPassFile(path)
		}
	}
	return "", "", errors.New("twintest: no password file")
}

// readPassFile reads host:port:db:user:password, with \: and \\ escaped.
func readPassFile(path string) (string, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return "", "", fmt.Errorf("twintest: %s is empty", path)
	}
	var fields []string
	var cur strings.Builder
	line := sc.Text()
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case line[i] == ':':
			fields = append(fields, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(line[i])
		}
	}
	fields = append(fields, cur.String())
	if len(fields) != 5 {
		return "", "", fmt.Errorf("twintest: %s: not a password file line", path)
	}
	return fields[3], fields[4], nil
}

// Inject injects a fault (CrashWriter, ...); d is how long HangWriter and StallReplication last.
// It returns once the fault is injected; WaitWhole waits for the twin to recover.
func (tw *Twin) Inject(ctx context.Context, fault string, d time.Duration) error {
	_, err := twin.Client(tw.dir).Chaos(ctx, api.ChaosRequest{Fault: fault, For: d})
	return err
}

// Writer is the name of the writer instance now (instance1, instance2).
func (tw *Twin) Writer(ctx context.Context) (string, error) {
	st, err := twin.Client(tw.dir).Status(ctx)
	if err != nil {
		return "", err
	}
	for _, in := range st.Instances {
		if in.Role == api.RoleWriter && in.State == api.StateRunning {
			return in.Name, nil
		}
	}
	return "", nil
}

// WaitWriter waits until an instance other than old is the running writer, and returns it.
func (tw *Twin) WaitWriter(ctx context.Context, old string) (string, error) {
	for {
		if w, err := tw.Writer(ctx); err == nil && w != "" && w != old {
			return w, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("twintest: the writer is still %s: %w", old, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WaitWhole waits until the twin is ready, every instance runs, each reader may be promoted and
// prod's replication is synchronous again.
func (tw *Twin) WaitWhole(ctx context.Context) error {
	for {
		st, err := twin.Client(tw.dir).Status(ctx)
		ok := err == nil && st.Phase == api.PhaseReady && !st.Degraded && len(st.Instances) > 0
		if ok {
			for _, in := range st.Instances {
				ok = ok && in.State == api.StateRunning && (in.Role == api.RoleWriter || in.Promotable)
			}
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("twintest: the twin is not whole: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
