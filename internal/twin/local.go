// Package twin is the facade the CLI uses for the local twin: it resolves and checks the state
// directory, starts the supervisor in the background (a re-exec of the apgstack binary in its own
// session, logging to the state directory) or in the foreground, waits until the cluster is
// ready, stops it, reports its status, and prepares psql's environment.
package twin

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/internal/runas"
	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/endpoint"
	"github.com/apgstack/apgstack/internal/twin/instance"
	"github.com/apgstack/apgstack/internal/twin/statedir"
	"github.com/apgstack/apgstack/internal/twin/supervisor"
)

// StateDir resolves the state directory: the flag when given, else target.local.stateDir,
// relative paths taken from the working directory, a symbolic link followed (see PlaceStateDir).
func StateDir(cfg apgstack.Config, flag string) (string, error) {
	link, err := configured(cfg, flag)
	if err != nil {
		return "", err
	}
	if real, err := filepath.EvalSymlinks(link); err == nil {
		return real, nil
	}
	return link, nil
}

func configured(cfg apgstack.Config, flag string) (string, error) {
	dir := cfg.Target.Local.StateDir
	if flag != "" {
		dir = flag
	}
	if dir == "" {
		dir = apgstack.Default().Target.Local.StateDir
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("state directory %q: %w", dir, err)
	}
	return abs, nil
}

// FallbackRoot holds state directories placed away from an unreachable working directory.
var FallbackRoot = "/var/lib/apgstack"

// PlaceStateDir resolves the state directory for up. One case is helped instead of refused: the
// default state directory (.apgstack, nothing configured) in a working directory the server
// account cannot reach — typically a clone under /root, run as root. Then the state goes to
// FallbackRoot/<dir>-<hash> and .apgstack becomes a symbolic link to it, so every command keeps
// finding it from the working directory; note says so. A state directory given explicitly
// (--state-dir, target.local.stateDir, APGSTACK_TARGET_LOCAL_STATEDIR) is used as given, and Check
// refuses it with what to change when it is unreachable.
func PlaceStateDir(cfg apgstack.Config, flag string) (dir, note string, err error) {
	link, err := configured(cfg, flag)
	if err != nil {
		return "", "", err
	}
	if _, err := os.Lstat(link); err == nil {
		real, err := filepath.EvalSymlinks(link)
		if err != nil {
			return "", "", fmt.Errorf("state directory %s: %w", link, err)
		}
		return real, "", nil
	}
	acct, target, ok := fallbackFor(cfg, flag, link)
	if !ok {
		return link, "", nil
	}
	if err := reachable(acct, target); err != nil {
		return link, "", nil // Check explains the original directory
	}
	if err := statedir.Claim(target); err != nil {
		return "", "", err
	}
	if err := os.Symlink(target, link); err != nil {
		return "", "", fmt.Errorf("link %s to the state directory %s: %w", link, target, err)
	}
	note = fmt.Sprintf("%s cannot be reached by the %s account that runs PostgreSQL, so the state lives in %s, linked from %s "+
		"(choose the place yourself with --state-dir)", filepath.Dir(link), acct.Name, target, link)
	return target, note, nil
}

// fallbackFor says whether up places the state directory link under FallbackRoot (see
// PlaceStateDir), and where.
func fallbackFor(cfg apgstack.Config, flag, link string) (*runas.Account, string, bool) {
	explicit := flag != "" || cfg.Target.Local.StateDir != apgstack.Default().Target.Local.StateDir
	acct, err := runas.Resolve(cfg.Target.Local.OSUser)
	if err != nil || explicit || !acct.Switches() || !errors.Is(reachable(acct, link), runas.ErrUnreachable) {
		return nil, "", false
	}
	sum := sha256.Sum256([]byte(link))
	return acct, filepath.Join(FallbackRoot, filepath.Base(filepath.Dir(link))+"-"+hex.EncodeToString(sum[:4])), true
}

// RemoveStateDir deletes the twin's state directory (only what apgstack created; see
// statedir.Remove) and, when the configured path is a link to it, the link.
func RemoveStateDir(cfg apgstack.Config, flag, dir string) error {
	if err := statedir.Remove(dir); err != nil {
		return err
	}
	if link, err := configured(cfg, flag); err == nil && link != dir {
		if fi, err := os.Lstat(link); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			if err := os.Remove(link); err != nil {
				return fmt.Errorf("delete the link %s: %w", link, err)
			}
		}
	}
	return nil
}

// Options for Up.
type Options struct {
	Config   apgstack.Config
	StateDir string // absolute
	Strict   bool
	// Exe is the apgstack binary re-executed as `apgstack supervise` (default os.Executable()).
	Exe string
	// Progress receives progress lines (stderr).
	Progress io.Writer
	Log      *slog.Logger
	Verbose  bool
	// DegradeAfter and PollInterval override the supervisor's defaults (tests).
	DegradeAfter, PollInterval time.Duration
	// CrashAt is the supervisor's crash point (tests; from CrashAtEnv in `apgstack supervise`).
	CrashAt string
}

func (o Options) progress(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", args...)
	}
}

// Check verifies, before anything is created, what the supervisor would otherwise fail on deep in
// its log: an account to run the servers, a state directory that account can reach, and server
// binaries. It returns the version warning, if any.
func Check(ctx context.Context, cfg apgstack.Config, stateDir string, strict bool) (string, error) {
	acct, err := runas.Resolve(cfg.Target.Local.OSUser)
	if err != nil {
		return "", err
	}
	if err := reachable(acct, stateDir); err != nil {
		if errors.Is(err, runas.ErrUnreachable) {
			return "", fmt.Errorf("state directory %s: PostgreSQL runs as %s, which must reach it: %w\n"+
				"for example: apgstack up --state-dir %s/%s", stateDir, acct.Name, err, FallbackRoot, cfg.Database.StackName)
		}
		return "", err
	}
	if err := checkPorts(cfg); err != nil {
		return "", err
	}
	want, err := strconv.Atoi(apgstack.EngineMajor(cfg.Database.EngineVersion))
	if err != nil {
		return "", fmt.Errorf("database.engineVersion %q: %w", cfg.Database.EngineVersion, err)
	}
	_, warn, err := instance.FindBinaries(ctx, want, strict)
	return warn, err
}

// checkPorts refuses endpoint ports another program listens on, naming the setting, the ways to
// change it and a port that is free now.
func checkPorts(cfg apgstack.Config) error {
	for _, p := range []struct {
		path string
		port int
	}{{"database.port", cfg.Database.Port}, {"target.local.readerPort", cfg.ReaderPort()}} {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)))
		if err == nil {
			ln.Close()
			continue
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("%s %d: %w", p.path, p.port, err)
		}
		free := "another port"
		if l, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
			free = strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
			l.Close()
		}
		return fmt.Errorf("%s %d is in use on this machine (another PostgreSQL or twin?): choose another with --set %s=%s, %s=%s or in apgstack.yaml (%s is free now)",
			p.path, p.port, p.path, free, apgstack.EnvName(p.path), free, free)
	}
	return nil
}

func socket(stateDir string) string { return statedir.Layout{Root: stateDir}.Socket() }

// Running returns the status of the supervisor of stateDir, or api.ErrNotRunning.
func Running(ctx context.Context, stateDir string) (api.Status, error) {
	return api.NewClient(socket(stateDir)).Status(ctx)
}

// Up starts the supervisor in the background and returns its status once the cluster is ready.
// A supervisor already running for the state directory is left alone and its status returned.
func Up(ctx context.Context, o Options) (api.Status, error) {
	if st, err := Running(ctx, o.StateDir); err == nil {
		o.progress("already running (supervisor pid %d)", st.PID)
		return st, nil
	}
	if err := statedir.CheckClaimable(o.StateDir); err != nil {
		return api.Status{}, err
	}
	if _, err := Check(ctx, o.Config, o.StateDir, o.Strict); err != nil {
		return api.Status{}, err
	}
	if err := statedir.Claim(o.StateDir); err != nil {
		return api.Status{}, err
	}
	l := statedir.Layout{Root: o.StateDir}
	exe := o.Exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return api.Status{}, fmt.Errorf("find the apgstack binary to start the supervisor: %w", err)
		}
	}
	logf, err := os.OpenFile(l.LogFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return api.Status{}, fmt.Errorf("supervisor log: %w", err)
	}
	defer logf.Close()
	cfgJSON, err := json.Marshal(o.Config)
	if err != nil {
		return api.Status{}, err
	}
	notifyR, notifyW, err := os.Pipe()
	if err != nil {
		return api.Status{}, err
	}
	defer notifyR.Close()
	// The keeper runs the supervisor and restarts it when it dies (keeper.go).
	args := append([]string{"keep", "--state-dir", o.StateDir}, o.superviseArgs()...)
	cmd := exec.Command(exe, args...)
	cmd.Stdin = strings.NewReader(string(cfgJSON))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{notifyW} // fd 3: progress lines, then READY or ERROR
	// Its own session: the supervisor outlives this command and the terminal it runs in.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		notifyW.Close()
		return api.Status{}, fmt.Errorf("start the supervisor: %w", err)
	}
	notifyW.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	result := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(notifyR)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == readyLine:
				result <- nil
				return
			case strings.HasPrefix(line, errorLine):
				result <- errors.New(strings.ReplaceAll(strings.TrimPrefix(line, errorLine), `\n`, "\n"))
				return
			default:
				o.progress("%s", line)
			}
		}
		result <- fmt.Errorf("the supervisor stopped before the cluster was ready; its log %s ends with:\n%s", l.LogFile(), tail(l.LogFile(), 15))
	}()
	select {
	case err := <-result:
		if err != nil {
			<-exited
			return api.Status{}, err
		}
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-exited
		return api.Status{}, ctx.Err()
	}
	// Ready: the twin runs, whatever interrupt comes now.
	return Running(context.WithoutCancel(ctx), o.StateDir)
}

// superviseArgs are the supervise command's flags after --state-dir.
func (o Options) superviseArgs() []string {
	var args []string
	if o.Strict {
		args = append(args, "--strict-version")
	}
	if o.Verbose {
		args = append(args, "--verbose")
	}
	return args
}

const (
	readyLine = "READY"
	errorLine = "ERROR "
)

// Supervise is the `apgstack supervise` side of Up: it runs the supervisor, reporting progress
// and readiness on notify (fd 3 from Up; nil in the foreground), until ctx ends or `down`.
func Supervise(ctx context.Context, o Options, notify io.Writer, ready func(api.Status)) error {
	say := func(s string) {
		if notify != nil {
			fmt.Fprintln(notify, s)
		}
	}
	err := supervisor.Run(ctx, supervisor.Options{
		Config: o.Config, StateDir: o.StateDir, Strict: o.Strict, Log: o.Log,
		DegradeAfter: o.DegradeAfter, PollInterval: o.PollInterval, CrashAt: o.CrashAt,
		Progress: func(msg string) {
			say(msg)
			o.progress("%s", msg)
		},
	}, func(st api.Status) {
		say(readyLine)
		if c, ok := notify.(io.Closer); ok {
			c.Close()
		}
		if ready != nil {
			ready(st)
		}
	})
	if err != nil {
		say(errorLine + strings.ReplaceAll(err.Error(), "\n", `\n`))
	}
	return err
}

// ReadConfig reads the configuration Up hands to `apgstack supervise` on its standard input.
func ReadConfig(r io.Reader) (apgstack.Config, error) {
	var cfg apgstack.Config
	if err := json.NewDecoder(r).Decode(&cfg); err != nil {
		return cfg, fmt.Errorf("read configuration from standard input: %w", err)
	}
	return cfg, cfg.Validate()
}

// Down stops the supervisor of stateDir and every server it ran, waiting until none is left; a
// server left by a supervisor that died is stopped too. It reports whether anything ran.
func Down(ctx context.Context, stateDir string) (bool, error) {
	l := statedir.Layout{Root: stateDir}
	if _, err := os.Stat(stateDir); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	ran := keeperPID(stateDir) != 0
	// The keeper first, so that it does not start again the supervisor this stops.
	if err := stopKeeper(ctx, stateDir, 2*time.Minute); err != nil {
		return ran, err
	}
	if ran {
		if err := waitUnlocked(ctx, l, 2*time.Minute); err != nil {
			return ran, err
		}
	}
	c := api.NewClient(l.Socket())
	if err := c.Shutdown(ctx); err == nil {
		ran = true
		if err := waitUnlocked(ctx, l, 2*time.Minute); err != nil {
			return ran, err
		}
	} else if !errors.Is(err, api.ErrNotRunning) {
		return ran, err
	}
	dirs, _ := filepath.Glob(filepath.Join(l.InstancesDir(), "*", "data"))
	for _, d := range dirs {
		if instance.StalePID(d) != 0 {
			ran = true
			if err := instance.StopStale(ctx, d); err != nil {
				return ran, err
			}
		}
	}
	// A supervisor that died left its endpoints' nftables table serving; down ends it too.
	if k := endpoint.ForTwin(stateDir); k.KernelUnavailable(ctx) == "" {
		if err := k.Remove(ctx); err != nil {
			return ran, err
		}
	}
	return ran, nil
}

// waitUnlocked waits until the supervisor released its lock, that is, has exited.
func waitUnlocked(ctx context.Context, l supervisor.Layout, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		f, err := os.OpenFile(l.LockFile(), os.O_RDWR, 0)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err == nil {
			lerr := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
			f.Close()
			if lerr == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the supervisor of %s did not stop within %s; see %s", l.Root, limit, l.LogFile())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Status returns the live status, or, when no supervisor runs, what the state directory says.
func Status(ctx context.Context, cfg apgstack.Config, stateDir string) (api.Status, error) {
	st, err := Running(ctx, stateDir)
	if err == nil {
		return st, nil
	}
	if !errors.Is(err, api.ErrNotRunning) {
		return st, err
	}
	st = api.Status{Name: cfg.Database.StackName, Stage: cfg.Environment.Stage, StateDir: stateDir, Phase: api.PhaseStopped,
		EngineVersion: cfg.Database.EngineVersion, Outputs: supervisor.OutputsFor(cfg, stateDir)}
	if want, err := strconv.Atoi(apgstack.EngineMajor(cfg.Database.EngineVersion)); err == nil {
		if b, warn, err := instance.FindBinaries(ctx, want, false); err == nil {
			st.ServerVersion, st.VersionWarning = b.Version, warn
		}
	}
	st.SynchronousReplication = bestpractice.Stage(cfg.Environment.Stage).SynchronousReplication
	state, _, err := supervisor.LoadState(statedir.Layout{Root: stateDir})
	if err != nil {
		return st, err
	}
	st.Degraded, st.DegradedSince, st.MissingLibraries = state.Sync.Degraded, state.Sync.DegradedSince, state.MissingLibraries
	keeper := keeperPID(stateDir)
	if keeper != 0 {
		// The supervisor died and its keeper is starting it again: the servers still serve the
		// sessions they have; the endpoints come back with the new supervisor.
		st.Phase = api.PhaseRestarting
	}
	// The kernel path's rules outlive the supervisor: where its table is still there, the
	// endpoints go on serving.
	endpoints := "the endpoints are down"
	if k := endpoint.ForTwin(stateDir); k.KernelUnavailable(ctx) == "" {
		if ok, err := k.Exists(ctx); err == nil && ok {
			endpoints = "the endpoints go on through the kernel's rules"
			why := "nftables table " + k.Table + ", kept in the kernel while the supervisor is away"
			writer, readers := offlineBackends(state)
			if len(readers) == 0 {
				readers = writer
			}
			st.Endpoints = []api.Endpoint{
				{Name: "writer", Address: net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Database.Port)), Backends: writer, Path: endpoint.PathKernel, PathReason: why},
				{Name: "reader", Address: net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.ReaderPort())), Backends: readers, Path: endpoint.PathKernel, PathReason: why},
			}
		}
	}
	for _, in := range state.Instances {
		i := api.Instance{Name: in.Name, Role: in.Role, Port: in.Port, State: api.StateStopped}
		if pid := instance.StalePID(filepath.Join(statedir.Layout{Root: stateDir}.InstanceDir(in.Name), "data")); pid != 0 {
			i.State, i.PID = api.StateRunning, pid
			i.Error = fmt.Sprintf("postgres (pid %d) serves without its supervisor (sessions made to its port go on; %s): `apgstack up` starts a new one, `apgstack down` stops it", pid, endpoints)
			if keeper != 0 {
				i.Error = fmt.Sprintf("postgres (pid %d) serves while the keeper (pid %d) restarts the supervisor: sessions made to its port go on; %s until the new supervisor serves", pid, keeper, endpoints)
			}
		}
		st.Instances = append(st.Instances, i)
	}
	return st, nil
}

// offlineBackends are the recorded writer's and readers' addresses, as the supervisor last
// pointed the endpoints at them.
func offlineBackends(state supervisor.State) (writer, readers []string) {
	for _, in := range state.Instances {
		a := net.JoinHostPort("127.0.0.1", strconv.Itoa(in.Port))
		if in.Role == api.RoleWriter {
			writer = append(writer, a)
		} else {
			readers = append(readers, a)
		}
	}
	return writer, readers
}

func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// reachable checks that the account can reach stateDir, checking from the deepest folder that
// exists (what is missing will be created reachable).
func reachable(acct *runas.Account, stateDir string) error {
	probe := filepath.Join(stateDir, "instances")
	for p := stateDir; p != filepath.Dir(p); p = filepath.Dir(p) {
		if _, err := os.Stat(filepath.Dir(p)); err == nil {
			if _, err := os.Stat(p); err != nil {
				probe = p
			}
			break
		}
	}
	return acct.CheckReachable(probe)
}
