// Package bench takes the figures that say how fast and how safe apgstack is, on the local twin
// of this machine: time to ready against the bare PostgreSQL floor, failover and switchover
// without losing an acknowledged write, the endpoints' and the best-practice parameter groups'
// cost in pgbench throughput, and the time to synthesize the templates. Each scenario yields rows
// of a Report, which prints as a table and as BENCHMARKS.md.
//
// Benchmarks are not tests: nothing here runs under `go test` except the statistics and the
// report (bench_test.go).
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/internal/runas"
	"github.com/apgstack/apgstack/internal/twin/instance"
)

// Scenario names, in the order they run (--only picks among them).
const (
	ScenarioSynth        = "synth"
	ScenarioReady        = "ready"
	ScenarioEndpoint     = "endpoint"
	ScenarioSwitchover   = "switchover"
	ScenarioFailover     = "failover"
	ScenarioSaturation   = "saturation"
	ScenarioBestPractice = "bestpractice"
)

// Scenarios lists every scenario in running order.
var Scenarios = []string{ScenarioSynth, ScenarioReady, ScenarioEndpoint, ScenarioSwitchover, ScenarioFailover, ScenarioSaturation, ScenarioBestPractice}

// Options configure a bench run.
type Options struct {
	// Config is the base configuration; each scenario sets the stage, ports chosen at run time
	// and its own state directory on a copy.
	Config apgstack.Config
	// Quick runs fewer, shorter rounds (under two minutes on two cores).
	Quick bool
	// Runs overrides the number of runs of every scenario (0: the defaults of Quick or full).
	Runs int
	// Only restricts the run to these scenarios (empty: all).
	Only []string
	// Exe is the apgstack binary `up` re-executes as the supervisor (default os.Executable()).
	Exe string
	// Synth writes the three templates and their parameter files into dir, as `apgstack synth`
	// does (the cli package provides it; nil leaves the synth row out as not available).
	Synth func(cfg apgstack.Config, dir string) error
	// WorkDir is where state directories are created (default /var/tmp): the server account
	// must reach it.
	WorkDir string
	// SaturationPhase is how long each load of the saturation scenario lasts (0: 45 s, 8 s with Quick).
	SaturationPhase time.Duration
	// Progress receives a line per step (stderr).
	Progress io.Writer
	Log      *slog.Logger
}

// CheckOnly verifies --only names.
func CheckOnly(only []string) error {
	for _, n := range only {
		if !slices.Contains(Scenarios, n) {
			return fmt.Errorf("--only %q: allowed values are %s", n, strings.Join(Scenarios, ", "))
		}
	}
	return nil
}

// settings are the sizes of a run.
type settings struct {
	readyRuns, killRuns, stopRuns, switchRuns int
	pgbenchRounds, pgbenchSeconds             int
	clients, threads, scale                   int
	synthIterations                           int
	recoverTimeout                            time.Duration // longest wait for writes to resume
	wholeTimeout                              time.Duration // longest wait for the twin to be whole again
}

func newSettings(quick bool, runs int) settings {
	s := settings{readyRuns: 5, killRuns: 10, stopRuns: 5, switchRuns: 5, pgbenchRounds: 6, pgbenchSeconds: 8,
		synthIterations: 200, recoverTimeout: 30 * time.Second, wholeTimeout: 2 * time.Minute}
	if quick {
		s = settings{readyRuns: 2, killRuns: 3, stopRuns: 1, switchRuns: 2, pgbenchRounds: 2, pgbenchSeconds: 2,
			synthIterations: 20, recoverTimeout: 15 * time.Second, wholeTimeout: 30 * time.Second}
	}
	if runs > 0 {
		s.readyRuns, s.killRuns, s.stopRuns, s.switchRuns, s.pgbenchRounds = runs, runs, runs, runs, runs
	}
	s.threads = max(1, runtime.NumCPU())
	s.clients = 2 * s.threads
	s.scale = 4
	return s
}

func (s settings) String() string {
	return fmt.Sprintf("time to ready %d runs; SIGKILL failover %d runs, SIGSTOP %d, switchover %d; pgbench %d rounds of %d s per side, %d clients, %d threads, scale %d; synth %d iterations",
		s.readyRuns, s.killRuns, s.stopRuns, s.switchRuns, s.pgbenchRounds, s.pgbenchSeconds, s.clients, s.threads, s.scale, s.synthIterations)
}

// runner holds what the scenarios share: the account and binaries, the work directory, the
// cleanups that must run however the run ends, and the prod twin some scenarios share.
type runner struct {
	o    Options
	s    settings
	cfg  apgstack.Config
	acct *runas.Account
	bin  instance.Binaries
	work string
	log  *slog.Logger

	mu        sync.Mutex
	cleanups  []func()
	rows      []Row
	timelines []Timeline
	prod      *liveTwin
	prodCount int
}

// Run runs the selected scenarios and returns the report. A scenario that cannot run gives rows
// marked not available with the reason; an interrupted run (ctx ended) returns what was measured
// and ctx's error. Every process and directory it created is gone when it returns.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := CheckOnly(o.Only); err != nil {
		return nil, err
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.WorkDir == "" {
		o.WorkDir = "/var/tmp"
	}
	if o.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("bench: find the apgstack binary: %w", err)
		}
		o.Exe = exe
	}
	r := &runner{o: o, s: newSettings(o.Quick, o.Runs), cfg: o.Config, log: o.Log}
	r.cfg.Target.Kind = apgstack.TargetLocal
	var err error
	if r.acct, err = runas.Resolve(r.cfg.Target.Local.OSUser); err != nil {
		return nil, err
	}
	want, err := strconv.Atoi(apgstack.EngineMajor(r.cfg.Database.EngineVersion))
	if err != nil {
		return nil, fmt.Errorf("database.engineVersion %q: %w", r.cfg.Database.EngineVersion, err)
	}
	var warn string
	if r.bin, warn, err = instance.FindBinaries(ctx, want, false); err != nil {
		return nil, err
	}
	pg := r.bin.Version
	if warn != "" {
		pg += fmt.Sprintf(" (database.engineVersion is %s; PostgreSQL %s is the nearest installed major)", r.cfg.Database.EngineVersion, r.bin.Version)
	}
	rep := &Report{Machine: DescribeMachine(pg), Started: time.Now(), Quick: o.Quick, Settings: r.s.String(), LoadAvg: LoadAverage(), Revision: BuildRevision()}
	if r.work, err = os.MkdirTemp(o.WorkDir, "apgstack-bench-"); err != nil {
		return nil, fmt.Errorf("bench: work directory: %w", err)
	}
	// 0755 whatever the umask: the server account passes through it to the state directories.
	if err := os.Chmod(r.work, 0o755); err != nil {
		os.RemoveAll(r.work)
		return nil, fmt.Errorf("bench: work directory: %w", err)
	}
	r.defer_(func() { _ = os.RemoveAll(r.work) })
	defer r.cleanup()
	if err := r.acct.CheckReachable(r.work); err != nil {
		return nil, err
	}

	steps := map[string]func(context.Context) error{
		ScenarioSynth:        r.synth,
		ScenarioReady:        r.ready,
		ScenarioEndpoint:     r.endpoint,
		ScenarioSwitchover:   r.switchover,
		ScenarioFailover:     r.failover,
		ScenarioSaturation:   r.saturation,
		ScenarioBestPractice: r.bestPractice,
	}
	for _, name := range Scenarios {
		if len(o.Only) > 0 && !slices.Contains(o.Only, name) {
			continue
		}
		if name == ScenarioBestPractice {
			r.closeProd() // its own server; the prod twin is not needed any more
		}
		r.progress("== %s", name)
		if err := steps[name](ctx); err != nil {
			if ctx.Err() != nil {
				rep.Rows, rep.Timelines, rep.Elapsed = r.rows, r.timelines, time.Since(rep.Started)
				return rep, ctx.Err()
			}
			r.progress("%s: %v", name, err)
			v := Failed
			if errors.Is(err, errNotAvailable) {
				v = NotAvailable
			}
			r.add(Row{Scenario: name, Measure: "scenario", Result: "not measured", Verdict: v, Note: oneLine(err.Error())})
		}
	}
	rep.Rows, rep.Timelines, rep.Elapsed = r.rows, r.timelines, time.Since(rep.Started)
	return rep, nil
}

func (r *runner) progress(format string, args ...any) {
	fmt.Fprintf(r.o.Progress, "bench: "+format+"\n", args...)
}

func (r *runner) add(rows ...Row) {
	r.mu.Lock()
	r.rows = append(r.rows, rows...)
	r.mu.Unlock()
}

// defer_ registers a cleanup; they run last-in first-out when Run returns, whatever happened.
func (r *runner) defer_(f func()) {
	r.mu.Lock()
	r.cleanups = append(r.cleanups, f)
	r.mu.Unlock()
}

func (r *runner) cleanup() {
	r.mu.Lock()
	list := r.cleanups
	r.cleanups = nil
	r.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		list[i]()
	}
}

// freePorts returns n distinct free loopback ports in the range database.port allows.
func freePorts(n int) ([]int, error) {
	var out []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for len(out) < n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		lns = append(lns, ln)
		if p := ln.Addr().(*net.TCPAddr).Port; p >= 1150 {
			out = append(out, p)
		}
	}
	return out, nil
}

// oneLine shortens an error for a table cell.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

var errNotAvailable = errors.New("not available")
