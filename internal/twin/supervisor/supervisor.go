// Package supervisor runs the local twin: it owns the PostgreSQL instances (a writer and, for
// pre-prod and prod, a reader fed by streaming replication), the cluster and reader endpoints,
// the certificates, the master secret and the state directory, and serves the control API.
// One supervisor runs per state directory (a lock file enforces it).
//
// Files by responsibility: supervisor.go the lifecycle (run, start, stop); instances.go the
// servers' start and standby setup; creation.go the master user and bootstrap; detection.go the
// writer's health watch; failover.go failover and switchover; rejoin.go an old writer's return
// as a reader; watch.go the instances' exits, restarts and synchronous replication's
// bookkeeping; rotation.go secret rotation; backup.go backups and snapshots; restore.go restores
// (offline, from a snapshot, and a restored twin's first start); metrics.go the sampler, alarms,
// notifications and Prometheus; status.go the status and outputs; reshape.go readers removed by
// a stage change; recovery.go what is found after an unclean stop; layout.go state.json and the
// event log; topology.go the cluster's state (roles, instances, conditions, sync, endpoints'
// backends), owned by one loop and changed only by its commands; condition.go each instance's
// condition; crashpoint.go the steps at which tests have the supervisor die. The PostgreSQL work itself (promote, rewind, fence,
// replication) is the instance package's: this package decides when and in which order.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/apgstack/apgstack/internal/atomicfile"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/internal/runas"
	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/certs"
	"github.com/apgstack/apgstack/internal/twin/endpoint"
	"github.com/apgstack/apgstack/internal/twin/instance"
	"github.com/apgstack/apgstack/internal/twin/postgres"
	"github.com/apgstack/apgstack/internal/twin/secretstore"
	"github.com/apgstack/apgstack/internal/twin/statedir"
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
	// Monitoring tunes the sampler, alarms and notifications (metrics.go).
	Monitoring MonitoringOptions
	// CrashAt names a crash point (CrashPoints) where the supervisor kills itself with SIGKILL:
	// tests of recovery set it; empty in normal use.
	CrashAt string
	// Serving, when set, is called with the supervisor once it serves, before ready: tests reach
	// the running supervisor so.
	Serving func(*Supervisor)
	// BeforeRejoin, when set, is called before an old writer rejoins after an automatic failover:
	// tests hold the rejoin back so.
	BeforeRejoin func()
	// ProxyOnlyEndpoints keeps both endpoints on the user-space proxy even where nftables works.
	ProxyOnlyEndpoints bool
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
	layout Layout
	log    *slog.Logger
	acct   *runas.Account
	bin    instance.Binaries
	warn   string
	store  *secretstore.Store
	events *eventLog

	// topo is the cluster's state (configuration, phase, roles, instances, conditions, sync,
	// endpoints' backends), owned by its loop and changed by commands only (topology.go).
	topo     *topologyLoop
	writerEP *endpoint.Proxy
	readerEP *endpoint.Proxy

	redirects *endpoint.Redirects // the endpoints' kernel path; nil: proxy only

	ops *operations // backups, snapshots, metrics, alarms, notifications (backup.go, metrics.go)
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
	defer s.topo.close() // last: everything that changes the topology has ended
	defer s.unlock()
	defer func() {
		if err != nil {
			s.clusterEvent("failure", "start failed: %v", err)
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

	if s.opts.Serving != nil {
		s.opts.Serving(s)
	}
	stopHA := s.startHA(ctx) // failover watch and rotation schedule (failover.go, rotation.go)
	defer stopHA()
	s.resumeRotations(ctx)
	unclean := s.unclean
	unclean.adopted = s.topo.now().adopted
	s.reportRecovery(unclean)
	s.setPhase(api.PhaseReady)
	s.clusterEvent("notification", "cluster available")
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
	if err := checkCrashAt(opts.CrashAt); err != nil {
		return nil, err
	}
	s := &Supervisor{
		opts: opts, layout: Layout{Root: opts.StateDir}, log: opts.Log,
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
	if err := atomicfile.Write(s.layout.PIDFile(), []byte(strconv.Itoa(os.Getpid())+"\n")); err != nil {
		s.unlock()
		return nil, fmt.Errorf("write pid file: %w", err)
	}
	// Its loop ends with Run. It records state.json: atomic and durable, so that after a crash
	// the file names the old writer or the new, never none.
	s.topo = newTopology(topology{cfg: opts.Config, phase: api.PhaseStarting}, func(st State) error {
		return atomicfile.WriteJSON(s.layout.StateFile(), st, atomicfile.Mode(0o644))
	})
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
	s.ops.notifyEvent(s.cfg().Database.StackName, ev)
	s.log.Info("event", "source", ev.SourceID, "category", ev.Category, "message", ev.Message)
}

// cfg is the configuration in effect (Reconfigure changes it).
func (s *Supervisor) cfg() apgstack.Config { return s.topo.now().cfg }

// start does everything up to serving: checks, files, servers, bootstrap, endpoints.
func (s *Supervisor) start(ctx context.Context) error {
	cfg := s.cfg()
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
	plan, err := postgres.PlanParameters(append(slices.Clone(bestpractice.ClusterParameters), bestpractice.InstanceParameterGroup(cfg.Database.PgauditLog)...), s.bin.HasLibrary)
	if err != nil {
		return err
	}
	for _, lib := range plan.MissingLibraries {
		s.log.Warn("preload library not installed on this machine: left out of shared_preload_libraries (Aurora loads it)", "library", lib)
	}

	st, existed, err := LoadState(s.layout)
	if err != nil {
		return err
	}
	if !existed {
		st.Created = time.Now().UTC()
	}
	s.loadState(st)
	s.setPlan(plan)
	if existed {
		if err := s.reconcile(ctx); err != nil { // the data over the record (reconcile.go)
			return err
		}
	}
	if err := atomicfile.WriteJSON(s.layout.ConfigFile(), cfg, atomicfile.Mode(0o644)); err != nil {
		return err
	}

	// A twin deleted by hand, never brought down, leaves its endpoint rules in the kernel, where
	// they would take the ports of a twin that uses them now.
	if k := endpoint.ForTwin(s.opts.StateDir); k.KernelUnavailable(ctx) == "" {
		removed, err := k.RemoveOrphans(ctx, holdsTwin)
		if err != nil {
			s.log.Warn("stale endpoint rules of deleted twins", "err", err)
		}
		for _, dir := range removed {
			s.progress("removed the endpoint rules of a twin deleted by hand (%s)", dir)
		}
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
	why := "proxy path chosen (ProxyOnlyEndpoints)"
	if !s.opts.ProxyOnlyEndpoints {
		s.redirects, why = endpoint.NewRedirects(ctx, endpoint.ForTwin(s.opts.StateDir), s.log)
	}
	s.writerEP.UseKernel(s.redirects, cfg.Database.Port, why)
	s.readerEP.UseKernel(s.redirects, cfg.ReaderPort(), why)
	s.useEndpoints(s.writerEP, s.readerEP)

	if err := os.MkdirAll(s.layout.TLSDir(), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", s.layout.TLSDir(), err)
	}
	tlsFiles := certs.Files{CA: s.layout.CABundle(), CAKey: filepath.Join(s.layout.TLSDir(), "ca-key.pem"),
		Cert: filepath.Join(s.layout.TLSDir(), "server.crt"), Key: filepath.Join(s.layout.TLSDir(), "server.key")}
	if _, err := os.Stat(tlsFiles.CA); errors.Is(err, fs.ErrNotExist) {
		s.progress("creating the TLS certificate authority and the servers' certificate (%s)", s.layout.TLSDir())
	}
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
	list := slices.Clone(s.topo.now().state.Instances)
	if len(list) == 0 {
		list = []InstanceState{{Name: firstInstance, Role: api.RoleWriter}}
	}
	if bestpractice.Stage(cfg.Environment.Stage).Reader && len(list) < 2 {
		list = append(list, InstanceState{Name: secondInstance, Role: api.RoleReader})
	}
	if err := s.assignPorts(list); err != nil {
		return err
	}
	if err := s.recordInstances(list); err != nil {
		return err
	}
	cert, _ := os.ReadFile(tlsFiles.Cert)
	key, _ := os.ReadFile(tlsFiles.Key)

	if err := s.prepareOperations(ctx); err != nil {
		return err
	}
	w, err := s.startWriter(ctx, s.topo.now().writer(), cert, key)
	if err != nil {
		return err
	}
	if err := s.awaitRestored(ctx, w); err != nil {
		return err
	}
	if err := s.firstCreation(ctx, w, master); err != nil {
		return err
	}
	if err := s.installAurora(ctx, w); err != nil { // Aurora's SQL functions, twin only (aurora.go)
		return err
	}
	if err := s.dropStraySlots(ctx, w); err != nil {
		return err
	}
	s.pointWriter(w.Name)
	if err := s.rejoinPending(ctx, w); err != nil { // an old writer that had not rejoined yet (rejoin.go)
		return err
	}
	for _, r := range s.topo.now().readers() {
		if err := s.startReader(ctx, r, w, cert, key); err != nil {
			return err
		}
	}
	if bestpractice.Stage(cfg.Environment.Stage).SynchronousReplication {
		if err := s.enableSync(ctx, w); err != nil {
			return err
		}
	}
	s.pruneLogs()
	return nil
}

// stopAll closes the endpoints, then stops the writer (so the readers receive its last WAL) and
// the readers.
func (s *Supervisor) stopAll() {
	s.setPhase(api.PhaseStopping)
	if s.redirects != nil {
		if err := s.redirects.Close(context.Background()); err != nil {
			s.log.Warn("remove the endpoints' nftables table", "err", err)
		}
	}
	if s.writerEP != nil {
		s.writerEP.Close()
	}
	if s.readerEP != nil {
		s.readerEP.Close()
	}
	t := s.topo.now()
	var order []*instance.Instance
	for _, in := range t.state.Instances {
		if i := t.instances[in.Name]; i != nil {
			if in.Role == api.RoleWriter {
				order = append([]*instance.Instance{i}, order...)
			} else {
				order = append(order, i)
			}
		}
	}
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

// Shutdown implements api.Backend.
func (s *Supervisor) Shutdown(context.Context) error {
	s.shutdownOnce.Do(func() { close(s.shutdown) })
	return nil
}

// Events implements api.Backend.
func (s *Supervisor) Events(context.Context) ([]api.Event, error) { return ReadEvents(s.layout) }

var errStop = errors.New("stop")

// holdsTwin says whether dir still holds a twin (its marker is there); when that cannot be told,
// it does.
func holdsTwin(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, statedir.MarkerName))
	return !errors.Is(err, fs.ErrNotExist)
}
