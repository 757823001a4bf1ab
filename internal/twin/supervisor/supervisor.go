// Package supervisor runs the local twin: it owns the PostgreSQL instances (a writer and, for
// pre-prod and prod, a reader fed by streaming replication), the cluster and reader endpoints,
// the certificates, the master secret and the state directory, and serves the control API.
// One supervisor runs per state directory (a lock file enforces it).
//
// The pieces for later work have their place here: failover and switchover (the writer's death
// is seen through instance.Done; SyncState says which reader may be promoted), secret rotation
// (secretstore stages), backups and alarms (the monitor loop).
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/apgstack/apgstack/internal/scram"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/internal/bootstrap"
	"github.com/apgstack/apgstack/internal/runas"
	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/certs"
	"github.com/apgstack/apgstack/internal/twin/endpoint"
	"github.com/apgstack/apgstack/internal/twin/instance"
	"github.com/apgstack/apgstack/internal/twin/postgres"
	"github.com/apgstack/apgstack/internal/twin/secretstore"
	"github.com/apgstack/apgstack/internal/twin/statedir"
	"github.com/jackc/pgx/v5"
)

// Options configure a supervisor.
type Options struct {
	Config   apgstack.Config
	StateDir string // absolute
	// Strict refuses a PostgreSQL major other than the engine version's (--strict-version or
	// target.local.strictVersion).
	Strict bool
	Log    *slog.Logger
	// Progress receives short lines for the person waiting on `up`.
	Progress func(string)
	// DegradeAfter bounds how long commits wait for a gone synchronous reader before the writer
	// goes on alone (prod). Default 10 s.
	DegradeAfter time.Duration
	// ReaderRestartDelay is how long a reader that died stays down before the supervisor starts
	// it again (Aurora replaces a failed instance). Default 5 s; negative: never.
	ReaderRestartDelay time.Duration
	// PollInterval is how often instances and replication are checked. Default 1 s.
	PollInterval time.Duration
	// StartTimeout bounds each server's start. Default 2 min.
	StartTimeout time.Duration
	// ExtraSettings are postgresql.conf settings of other features (WAL archiving, ...).
	ExtraSettings []postgres.GUC
	// Monitoring tunes the sampler, alarms and notifications (monitoring.go).
	Monitoring MonitoringOptions
}

// Names of the instances, as Aurora numbers them; roles are kept in State because a failover
// swaps them.
const (
	firstInstance  = "instance1"
	secondInstance = "instance2"
)

// Supervisor is a running twin.
type Supervisor struct {
	// unclean is what was found of a predecessor that did not shut down (recovery.go).
	unclean uncleanStop

	opts   Options
	cfg    apgstack.Config
	layout Layout
	log    *slog.Logger
	acct   *runas.Account
	bin    instance.Binaries
	warn   string
	plan   postgres.Plan
	store  *secretstore.Store
	events *eventLog

	mu        sync.Mutex
	state     State
	phase     string
	instances map[string]*instance.Instance
	writerEP  *endpoint.Proxy
	readerEP  *endpoint.Proxy
	failed    map[string]string // instance -> why it is not running
	syncMark  int64             // WAL position a re-named synchronous reader must flush past

	ops *operations // backups, snapshots, metrics, alarms, notifications (backup.go, monitoring.go)
	ha  haState     // failover, switchover, rejoin and secret rotation (failover.go, rotation.go)

	shutdownOnce sync.Once
	shutdown     chan struct{}
	lock         *os.File
}

// Run brings the twin up, calls ready once it serves, and runs until ctx ends or a shutdown is
// requested through the API; then it stops every server and endpoint it started.
func Run(ctx context.Context, opts Options, ready func(api.Status)) (err error) {
	s, err := newSupervisor(opts)
	if err != nil {
		return err
	}
	defer s.unlock()
	defer func() {
		if err != nil {
			s.event(api.Event{SourceType: bestpractice.SourceCluster, SourceID: s.cfg.Database.StackName, Category: "failure", Message: "start failed: " + err.Error()})
		}
	}()
	defer s.stopAll()
	if err := s.start(ctx); err != nil {
		return err
	}
	ln, err := api.Listen(s.layout.Socket())
	if err != nil {
		return err
	}
	apiCtx, stopAPI := context.WithCancel(context.Background())
	apiDone := make(chan error, 1)
	go func() { apiDone <- api.Serve(apiCtx, ln, s) }()
	defer func() {
		stopAPI()
		<-apiDone
		_ = os.Remove(s.layout.Socket())
	}()

	if testHookReady != nil {
		testHookReady(s)
	}
	stopHA := s.startHA(ctx) // failover watch and rotation schedule (failover.go, rotation.go)
	defer stopHA()
	s.reportRecovery(s.unclean)
	s.setPhase(api.PhaseReady)
	s.event(api.Event{SourceType: bestpractice.SourceCluster, SourceID: s.cfg.Database.StackName, Category: "notification", Message: "cluster available"})
	stopOps := s.startOperations(ctx)
	defer stopOps()
	if ready != nil {
		ready(s.Status(ctx))
	}
	s.monitor(ctx)
	s.setPhase(api.PhaseStopping)
	return nil
}

func newSupervisor(opts Options) (*Supervisor, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Progress == nil {
		opts.Progress = func(string) {}
	}
	if opts.DegradeAfter == 0 {
		opts.DegradeAfter = 10 * time.Second
	}
	if opts.ReaderRestartDelay == 0 {
		opts.ReaderRestartDelay = 5 * time.Second
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = time.Second
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 2 * time.Minute
	}
	if !filepath.IsAbs(opts.StateDir) {
		return nil, fmt.Errorf("state directory %q: an absolute path is needed", opts.StateDir)
	}
	s := &Supervisor{
		opts: opts, cfg: opts.Config, layout: Layout{Root: opts.StateDir}, log: opts.Log,
		phase: api.PhaseStarting, instances: map[string]*instance.Instance{}, failed: map[string]string{},
		shutdown: make(chan struct{}),
	}
	s.events = &eventLog{path: s.layout.EventsFile()}
	// The state directory must be the twin's own (new, empty or marked) before anything is
	// written into it.
	if err := statedir.Claim(s.layout.Root); err != nil {
		return nil, err
	}
	// Explicitly, whatever the umask: the server account passes through it to instances/.
	if err := os.Chmod(s.layout.Root, 0o755); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	if err := os.MkdirAll(s.layout.RunDir(), 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", s.layout.RunDir(), err)
	}
	lock, err := os.OpenFile(s.layout.LockFile(), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock state directory: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		pid, _ := os.ReadFile(s.layout.PIDFile())
		return nil, fmt.Errorf("a supervisor already runs for %s (pid %s): use `apgstack status`, or `apgstack down` first", s.layout.Root, strings.TrimSpace(string(pid)))
	}
	s.lock = lock
	s.unclean = s.findUncleanStop() // before this supervisor's own pid file replaces the old one
	if err := os.WriteFile(s.layout.PIDFile(), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		s.unlock()
		return nil, fmt.Errorf("write pid file: %w", err)
	}
	return s, nil
}

func (s *Supervisor) unlock() {
	if s.lock != nil {
		_ = os.Remove(s.layout.PIDFile())
		s.lock.Close()
		s.lock = nil
	}
}

func (s *Supervisor) progress(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.log.Info(msg)
	s.opts.Progress(msg)
}

func (s *Supervisor) event(ev api.Event) {
	if err := s.events.add(ev); err != nil {
		s.log.Warn("event log", "err", err)
	}
	s.ops.notifyEvent(s.cfg.Database.StackName, ev)
	s.log.Info("event", "source", ev.SourceID, "category", ev.Category, "message", ev.Message)
}

func (s *Supervisor) setPhase(p string) {
	s.mu.Lock()
	s.phase = p
	s.mu.Unlock()
}

func (s *Supervisor) saveState() error {
	s.mu.Lock()
	st := s.state
	s.mu.Unlock()
	return writeJSONFile(s.layout.StateFile(), st, 0o644)
}

// start does everything up to serving: checks, files, servers, bootstrap, endpoints.
func (s *Supervisor) start(ctx context.Context) error {
	cfg := s.cfg
	acct, err := runas.Resolve(cfg.Target.Local.OSUser)
	if err != nil {
		return err
	}
	s.acct = acct
	if err := acct.CheckReachable(s.layout.InstancesDir()); err != nil {
		return err
	}
	want, err := strconv.Atoi(apgstack.EngineMajor(cfg.Database.EngineVersion))
	if err != nil {
		return fmt.Errorf("database.engineVersion %q: no major version: %w", cfg.Database.EngineVersion, err)
	}
	s.bin, s.warn, err = instance.FindBinaries(ctx, want, s.opts.Strict)
	if err != nil {
		return err
	}
	if s.warn != "" {
		s.log.Warn(s.warn)
	}
	s.plan, err = postgres.PlanParameters(append(slices.Clone(bestpractice.ClusterParameters), bestpractice.InstanceParameterGroup(cfg.Database.PgauditLog)...), s.bin.HasLibrary)
	if err != nil {
		return err
	}
	for _, lib := range s.plan.MissingLibraries {
		s.log.Warn("preload library not installed on this machine: left out of shared_preload_libraries (Aurora loads it)", "library", lib)
	}

	st, existed, err := LoadState(s.layout)
	if err != nil {
		return err
	}
	if !existed {
		st.Created = time.Now().UTC()
	}
	st.MissingLibraries = s.plan.MissingLibraries
	s.state = st
	if err := writeJSONFile(s.layout.ConfigFile(), cfg, 0o644); err != nil {
		return err
	}

	// Endpoints first: a taken port fails the start before anything is created.
	s.writerEP, err = endpoint.ListenLoopback("writer", cfg.Database.Port, s.log)
	if err != nil {
		return err
	}
	s.readerEP, err = endpoint.ListenLoopback("reader", cfg.ReaderPort(), s.log)
	if err != nil {
		return err
	}

	if err := os.MkdirAll(s.layout.TLSDir(), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", s.layout.TLSDir(), err)
	}
	tlsFiles := certs.Files{CA: s.layout.CABundle(), CAKey: filepath.Join(s.layout.TLSDir(), "ca-key.pem"),
		Cert: filepath.Join(s.layout.TLSDir(), "server.crt"), Key: filepath.Join(s.layout.TLSDir(), "server.key")}
	if err := certs.Ensure(tlsFiles, time.Now()); err != nil {
		return err
	}

	s.store, err = secretstore.Open(s.layout.SecretsDir())
	if err != nil {
		return err
	}
	master, err := s.masterSecret()
	if err != nil {
		return err
	}

	if err := os.MkdirAll(s.layout.InstancesDir(), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", s.layout.InstancesDir(), err)
	}
	if err := os.Chmod(s.layout.InstancesDir(), 0o755); err != nil {
		return err
	}
	if len(s.state.Instances) == 0 {
		s.state.Instances = []InstanceState{{Name: firstInstance, Role: api.RoleWriter}}
	}
	if bestpractice.Stage(cfg.Environment.Stage).Reader && len(s.state.Instances) < 2 {
		s.state.Instances = append(s.state.Instances, InstanceState{Name: secondInstance, Role: api.RoleReader})
	}
	if err := s.assignPorts(); err != nil {
		return err
	}
	if err := s.saveState(); err != nil {
		return err
	}
	cert, _ := os.ReadFile(tlsFiles.Cert)
	key, _ := os.ReadFile(tlsFiles.Key)

	if err := s.prepareOperations(ctx); err != nil {
		return err
	}
	writer := s.writerState()
	w, err := s.startWriter(ctx, writer, cert, key)
	if err != nil {
		return err
	}
	if err := s.awaitRestored(ctx, w); err != nil {
		return err
	}
	if err := s.firstCreation(ctx, w, master); err != nil {
		return err
	}
	if err := s.dropStraySlots(ctx, w); err != nil {
		return err
	}
	s.writerEP.SetBackends([]string{addr(w.Port)})
	if err := s.rejoinPending(ctx, w); err != nil { // an old writer that had not rejoined yet (failover.go)
		return err
	}
	for _, r := range s.state.Instances {
		if r.Role != api.RoleReader {
			continue
		}
		if err := s.startReader(ctx, r, w, cert, key); err != nil {
			return err
		}
	}
	s.updateReaderEndpoint()
	if bestpractice.Stage(cfg.Environment.Stage).SynchronousReplication {
		if err := s.enableSync(ctx, w); err != nil {
			return err
		}
	}
	s.pruneLogs()
	return nil
}

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// assignPorts gives each instance an internal loopback port: the remembered one while it is free,
// else a new free one.
func (s *Supervisor) assignPorts() error {
	taken := map[int]bool{s.cfg.Database.Port: true, s.cfg.ReaderPort(): true}
	for i := range s.state.Instances {
		in := &s.state.Instances[i]
		if in.Port != 0 && !taken[in.Port] && (portFree(in.Port) || instance.StalePID(filepath.Join(s.layout.InstanceDir(in.Name), "data")) != 0) {
			taken[in.Port] = true
			continue
		}
		for range 20 {
			p, err := freePort()
			if err != nil {
				return err
			}
			if !taken[p] {
				in.Port = p
				taken[p] = true
				break
			}
		}
	}
	return nil
}

func portFree(p int) bool {
	ln, err := net.Listen("tcp", addr(p))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (s *Supervisor) writerState() InstanceState {
	for _, in := range s.state.Instances {
		if in.Role == api.RoleWriter {
			return in
		}
	}
	return s.state.Instances[0]
}

func (s *Supervisor) newInstance(in InstanceState) *instance.Instance {
	return &instance.Instance{Name: in.Name, Dir: s.layout.InstanceDir(in.Name), Port: in.Port, Bin: s.bin, Acct: s.acct, Log: s.log}
}

// writeConfig renders the configuration files into the data directory and installs the TLS files.
func (s *Supervisor) writeConfig(i *instance.Instance, primary *postgres.Primary, cert, key []byte) error {
	if err := i.WriteTLS(cert, key); err != nil {
		return err
	}
	conf := postgres.Conf(s.plan, postgres.Server{Name: i.Name, Port: i.Port, SocketDir: i.SocketDir(),
		CertFile: i.CertFile(), KeyFile: i.KeyFile(), Primary: primary, Extra: s.opts.ExtraSettings})
	users := []string{s.acct.Name}
	if cur := currentUser(); cur != "" {
		users = append(users, cur)
	}
	for name, data := range map[string]string{"postgresql.conf": conf, "pg_hba.conf": postgres.HBA(s.plan.ForceSSL), "pg_ident.conf": postgres.Ident(users)} {
		if err := i.WriteFile(name, []byte(data)); err != nil {
			return err
		}
	}
	return nil
}

func (s *Supervisor) checkMajor(i *instance.Instance) error {
	m, err := i.DataMajor()
	if err != nil {
		return fmt.Errorf("instance %s: %w", i.Name, err)
	}
	if m != s.bin.Major {
		return fmt.Errorf("instance %s: its data directory %s was created by PostgreSQL %d, but the server found is PostgreSQL %s: install PostgreSQL %d, or start afresh with `apgstack down --delete`",
			i.Name, i.DataDir(), m, s.bin.Version, m)
	}
	return nil
}

func (s *Supervisor) startWriter(ctx context.Context, in InstanceState, cert, key []byte) (*instance.Instance, error) {
	w := s.newInstance(in)
	if err := w.Prepare(); err != nil {
		return nil, err
	}
	if !w.Initialized() {
		s.progress("creating the writer %s (initdb, data checksums, SCRAM)", w.Name)
		if err := w.InitDB(ctx); err != nil {
			return nil, err
		}
	} else if err := s.checkMajor(w); err != nil {
		return nil, err
	}
	if err := s.writeConfig(w, nil, cert, key); err != nil {
		return nil, err
	}
	s.progress("starting the writer %s (PostgreSQL %s on 127.0.0.1:%d)", w.Name, s.bin.Version, w.Port)
	sctx, cancel := context.WithTimeout(ctx, s.opts.StartTimeout)
	defer cancel()
	s.mu.Lock()
	s.instances[w.Name] = w
	s.mu.Unlock()
	if err := w.Start(sctx); err != nil {
		return nil, err
	}
	return w, nil
}

func (s *Supervisor) startReader(ctx context.Context, in InstanceState, w *instance.Instance, cert, key []byte) error {
	r := s.newInstance(in)
	if err := r.Prepare(); err != nil {
		return err
	}
	if !r.Initialized() {
		s.progress("creating the reader %s (base backup of %s, replication slot %s)", r.Name, w.Name, r.Name)
		if err := ensureSlot(ctx, w, r.Name); err != nil {
			return err
		}
		if err := r.BaseBackup(ctx, w, r.Name); err != nil {
			return err
		}
	} else if err := s.checkMajor(r); err != nil {
		return err
	}
	if err := ensureSlot(ctx, w, r.Name); err != nil {
		return err
	}
	if err := s.writeConfig(r, &postgres.Primary{SocketDir: w.SocketDir(), Port: w.Port, Slot: r.Name}, cert, key); err != nil {
		return err
	}
	if err := r.WriteFile("standby.signal", nil); err != nil {
		return err
	}
	s.progress("starting the reader %s (hot standby on 127.0.0.1:%d)", r.Name, r.Port)
	sctx, cancel := context.WithTimeout(ctx, s.opts.StartTimeout)
	defer cancel()
	s.mu.Lock()
	s.instances[r.Name] = r
	s.mu.Unlock()
	if err := r.Start(sctx); err != nil {
		return err
	}
	if err := waitStreaming(sctx, w, r.Name); err != nil {
		return err
	}
	return nil
}

func ensureSlot(ctx context.Context, w *instance.Instance, slot string) error {
	conn, err := w.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `SELECT pg_create_physical_replication_slot($1, true)
		WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)`, slot)
	if err != nil {
		return fmt.Errorf("replication slot %s: %w", slot, err)
	}
	return nil
}

// replication is one row of the writer's pg_stat_replication.
type replication struct {
	State, SyncState string
	ReplayLSN        string
	Flush            int64 // flush_lsn as a byte position
	LagBytes         int64 // current WAL position less replay_lsn
	ReplayLag        *float64
}

// queryReplication returns the writer's replication rows by application name and the writer's
// current WAL position as a byte position.
func queryReplication(ctx context.Context, w *instance.Instance) (map[string]replication, int64, error) {
	conn, err := w.Connect(ctx, "postgres")
	if err != nil {
		return nil, 0, err
	}
	defer conn.Close(ctx)
	var current int64
	if err := conn.QueryRow(ctx, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint").Scan(&current); err != nil {
		return nil, 0, fmt.Errorf("writer WAL position: %w", err)
	}
	rows, err := conn.Query(ctx, `SELECT application_name, state, sync_state, coalesce(replay_lsn::text, ''),
		coalesce(pg_wal_lsn_diff(flush_lsn, '0/0'), 0)::bigint,
		coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::bigint,
		extract(epoch FROM replay_lag)::float8
		FROM pg_stat_replication`)
	if err != nil {
		return nil, 0, fmt.Errorf("pg_stat_replication: %w", err)
	}
	out := map[string]replication{}
	for rows.Next() {
		var name string
		var r replication
		if err := rows.Scan(&name, &r.State, &r.SyncState, &r.ReplayLSN, &r.Flush, &r.LagBytes, &r.ReplayLag); err != nil {
			return nil, 0, err
		}
		out[name] = r
	}
	return out, current, rows.Err()
}

func waitStreaming(ctx context.Context, w *instance.Instance, name string) error {
	for {
		reps, _, err := queryReplication(ctx, w)
		if err == nil && reps[name].State == "streaming" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("reader %s does not stream from the writer: %w (last: %v %+v)", name, ctx.Err(), err, reps[name])
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// masterSecret returns the master secret, generating it on first creation.
func (s *Supervisor) masterSecret() (secretstore.DatabaseSecret, error) {
	name := s.SecretName()
	if !s.store.Exists(name) {
		pw, err := secretstore.GeneratePassword()
		if err != nil {
			return secretstore.DatabaseSecret{}, err
		}
		d := secretstore.DatabaseSecret{Engine: "postgres", Host: "localhost", Port: s.cfg.Database.Port,
			Username: s.cfg.Database.Username, Password: pw, DBName: s.cfg.Database.Name}
		if err := s.store.CreateDatabase(name, d); err != nil {
			return secretstore.DatabaseSecret{}, err
		}
		s.progress("master secret %s created in %s", name, s.store.Path(name))
	}
	return s.store.GetDatabase(name, secretstore.Current)
}

// SecretName is the master secret's name.
func (s *Supervisor) SecretName() string {
	return bestpractice.SecretName(s.cfg.Environment.Stage, s.cfg.Database.StackName)
}

// roleSecret returns the password of an application role, kept as its own secret beside the
// master's, generating it on first use.
func (s *Supervisor) roleSecret(role string) (string, error) {
	name := s.SecretName() + "/" + role
	if !s.store.Exists(name) {
		pw, err := secretstore.GeneratePassword()
		if err != nil {
			return "", err
		}
		d := secretstore.DatabaseSecret{Engine: "postgres", Host: "localhost", Port: s.cfg.Database.Port,
			Username: role, Password: pw, DBName: s.cfg.Database.Name}
		if err := s.store.CreateDatabase(name, d); err != nil {
			return "", err
		}
	}
	d, err := s.store.GetDatabase(name, secretstore.Current)
	return d.Password, err
}

// firstCreation creates the master user and the database, then runs the bootstrap, once.
func (s *Supervisor) firstCreation(ctx context.Context, w *instance.Instance, master secretstore.DatabaseSecret) error {
	if !s.state.MasterCreated {
		s.progress("creating the master user %s and the database %s", master.Username, master.DBName)
		if err := createMaster(ctx, w, master); err != nil {
			return err
		}
		s.state.MasterCreated = true
		if err := s.saveState(); err != nil {
			return err
		}
	}
	if s.state.Bootstrapped {
		return nil
	}
	s.progress("bootstrap: extensions, schema %s and its roles", s.cfg.Database.SchemaName())
	conn, err := w.Connect(ctx, master.DBName)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	opts := bootstrap.DefaultOptions(s.cfg.Database)
	for _, r := range []*bootstrap.Role{&opts.Owner, &opts.ReadWrite, &opts.ReadOnly} {
		if r.Password, err = s.roleSecret(r.Name); err != nil {
			return err
		}
	}
	// Only what is not installed here may be missing; everything else must be created.
	var available []string
	rows, err := conn.Query(ctx, "SELECT name FROM pg_available_extensions")
	if err != nil {
		return fmt.Errorf("bootstrap: available extensions: %w", err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return err
		}
		available = append(available, n)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, e := range opts.Extensions {
		if !slices.Contains(available, e) {
			opts.Optional = append(opts.Optional, e)
		}
	}
	rep, err := bootstrap.Run(ctx, conn, opts)
	if err != nil {
		return err
	}
	for _, m := range rep.MissingOptional {
		s.progress("warning: extension %s is not installed on this machine; the bootstrap left it out", m)
	}
	s.log.Info("bootstrap done", "created", rep.Created, "changed", rep.Changed)
	s.state.Bootstrapped = true
	return s.saveState()
}

// createMaster creates the master user (a superuser here: the local stand-in for rds_superuser)
// and the database. The password goes over the wire only as a SCRAM verifier, so the statement
// logs (log_statement=ddl, pgaudit) never see it.
func createMaster(ctx context.Context, w *instance.Instance, m secretstore.DatabaseSecret) error {
	conn, err := w.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	verifier, err := scram.Verifier(m.Password)
	if err != nil {
		return err
	}
	user := pgx.Identifier{m.Username}.Sanitize()
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", m.Username).Scan(&exists); err != nil {
		return fmt.Errorf("master user: %w", err)
	}
	stmt := "CREATE ROLE " + user + " LOGIN SUPERUSER PASSWORD " + postgres.Quote(verifier)
	if exists {
		stmt = "ALTER ROLE " + user + " LOGIN SUPERUSER PASSWORD " + postgres.Quote(verifier)
	}
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("create master user %s: %w", m.Username, err)
	}
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", m.DBName).Scan(&exists); err != nil {
		return fmt.Errorf("database %s: %w", m.DBName, err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{m.DBName}.Sanitize()+" OWNER "+user); err != nil {
			return fmt.Errorf("create database %s: %w", m.DBName, err)
		}
	}
	return nil
}

// stopAll closes the endpoints, then stops the writer (so the readers receive its last WAL) and
// the readers.
func (s *Supervisor) stopAll() {
	s.setPhase(api.PhaseStopping)
	if s.writerEP != nil {
		s.writerEP.Close()
	}
	if s.readerEP != nil {
		s.readerEP.Close()
	}
	s.mu.Lock()
	var order []*instance.Instance
	for _, in := range s.state.Instances {
		if i := s.instances[in.Name]; i != nil {
			if in.Role == api.RoleWriter {
				order = append([]*instance.Instance{i}, order...)
			} else {
				order = append(order, i)
			}
		}
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, i := range order {
		if err := i.Stop(ctx); err != nil {
			s.log.Warn("stop", "instance", i.Name, "err", err)
		} else {
			s.log.Info("stopped", "instance", i.Name)
		}
	}
	s.setPhase(api.PhaseStopped)
}

// testHookReady lets tests reach the running supervisor.
var testHookReady func(*Supervisor)

// restartInstance starts a server that stopped, with its data (a reader resumes streaming from
// its slot), and records the recovery.
func (s *Supervisor) restartInstance(ctx context.Context, name string) error {
	s.mu.Lock()
	i := s.instances[name]
	s.mu.Unlock()
	if i == nil {
		return fmt.Errorf("no instance %s", name)
	}
	sctx, cancel := context.WithTimeout(ctx, s.opts.StartTimeout)
	defer cancel()
	if err := i.Start(sctx); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.failed, name)
	s.mu.Unlock()
	s.event(api.Event{SourceType: bestpractice.SourceInstance, SourceID: name, Category: "recovery", Message: "instance " + name + " restarted"})
	return nil
}

// Shutdown implements api.Backend.
func (s *Supervisor) Shutdown(context.Context) error {
	s.shutdownOnce.Do(func() { close(s.shutdown) })
	return nil
}

// Events implements api.Backend.
func (s *Supervisor) Events(context.Context) ([]api.Event, error) { return ReadEvents(s.layout) }

var errStop = errors.New("stop")
