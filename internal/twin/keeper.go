package twin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/apgstack/apgstack/internal/twin/statedir"
)

// The keeper is the small process `up` leaves behind: it runs the supervisor as its child and,
// when the supervisor dies without being told to stop (kill -9, a crash), starts it again, as an
// init system would. The new supervisor finds its predecessor's traces and reports the recovery
// (an event and its log). A clean stop (down, SIGTERM) ends both.

// CrashAtEnv names, for tests, a step where the supervisor kills itself (supervisor.CrashPoints).
// Only the first supervisor a keeper runs gets it: the one restarted after that death recovers.
const CrashAtEnv = "APGSTACK_TEST_CRASH_AT"

// Restart policy: a pause before each restart, and a limit so that a supervisor that cannot
// start is not restarted forever.
const (
	keeperBackoff     = time.Second
	keeperMaxRestarts = 5
	keeperWindow      = 10 * time.Minute
)

// KeepOptions configure Keep.
type KeepOptions struct {
	Exe      string   // the apgstack binary
	StateDir string   // absolute
	Args     []string // the supervise command's flags after --state-dir
	Config   []byte   // the configuration, JSON, given to each supervisor on its standard input
	// Notify receives the first supervisor's progress and its READY or ERROR line (fd 3 of up).
	Notify io.Writer
	Log    *slog.Logger
}

// Keep runs and restarts the supervisor until it stops cleanly or ctx ends.
func Keep(ctx context.Context, o KeepOptions) error {
	l := statedir.Layout{Root: o.StateDir}
	if err := os.MkdirAll(l.RunDir(), 0o700); err != nil {
		return fmt.Errorf("keeper: %w", err)
	}
	if err := os.WriteFile(l.KeeperPIDFile(), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		return fmt.Errorf("keeper pid file: %w", err)
	}
	defer os.Remove(l.KeeperPIDFile())
	var restarts []time.Time
	for attempt := 0; ; attempt++ {
		ready, err := o.runOnce(ctx, attempt == 0)
		switch {
		case err == nil:
			return nil // stopped as asked
		case ctx.Err() != nil:
			return nil // the keeper was told to stop; the supervisor was told too
		case !ready:
			return err // it never served: up reports why, a restart would fail the same way
		}
		now := time.Now()
		restarts = append(restarts, now)
		for len(restarts) > 0 && now.Sub(restarts[0]) > keeperWindow {
			restarts = restarts[1:]
		}
		if len(restarts) > keeperMaxRestarts {
			o.Log.Error("the supervisor keeps dying; not restarting it again", "restarts", len(restarts), "within", keeperWindow, "last", err)
			return fmt.Errorf("the supervisor died %d times within %s (last: %w); `apgstack up` starts it again", len(restarts), keeperWindow, err)
		}
		o.Log.Warn("the supervisor ended without being told to stop; starting it again", "err", err, "in", keeperBackoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(keeperBackoff):
		}
	}
}

// runOnce runs one supervisor until it exits. It reports whether the supervisor became ready.
func (o KeepOptions) runOnce(ctx context.Context, first bool) (ready bool, err error) {
	r, w, err := os.Pipe()
	if err != nil {
		return false, err
	}
	defer r.Close()
	cmd := exec.Command(o.Exe, append([]string{"supervise", "--state-dir", o.StateDir}, o.Args...)...)
	cmd.Stdin = bytes.NewReader(o.Config)
	if !first {
		cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, CrashAtEnv+"=") })
	}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr // the state directory's supervisor.log
	cmd.ExtraFiles = []*os.File{w}
	if err := cmd.Start(); err != nil {
		w.Close()
		return false, fmt.Errorf("start the supervisor: %w", err)
	}
	w.Close()
	// SIGTERM to the keeper is a stop of the supervisor.
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
		case <-stopped:
		}
	}()
	// The lines are read beside the wait: the pipe's end of file may come late (or never, from
	// a server that inherited it), and the supervisor's exit is what matters.
	var readySeen atomic.Bool
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			line := sc.Text()
			if line == readyLine {
				readySeen.Store(true)
			}
			if first && o.Notify != nil {
				fmt.Fprintln(o.Notify, line)
				if line == readyLine || strings.HasPrefix(line, errorLine) {
					if c, ok := o.Notify.(io.Closer); ok {
						c.Close() // up has its answer and returns
					}
					first = false
				}
			}
		}
	}()
	err = cmd.Wait()
	close(stopped)
	_ = r.SetReadDeadline(time.Now().Add(200 * time.Millisecond)) // what is left in the pipe, then stop
	<-scanned
	ready = readySeen.Load()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("supervisor (pid %d) %s", cmd.Process.Pid, ee.ProcessState)
		}
	}
	return ready, err
}

// keeperPID returns the pid of a live keeper of stateDir, or 0.
func keeperPID(stateDir string) int {
	data, err := os.ReadFile(statedir.Layout{Root: stateDir}.KeeperPIDFile())
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 || syscall.Kill(pid, 0) != nil {
		return 0
	}
	return pid
}

// stopKeeper tells a live keeper to stop (it stops its supervisor) and waits until it is gone.
func stopKeeper(ctx context.Context, stateDir string, limit time.Duration) error {
	pid := keeperPID(stateDir)
	if pid == 0 {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return nil
	}
	deadline := time.Now().Add(limit)
	for keeperPID(stateDir) != 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("the keeper (pid %d) of %s did not stop within %s", pid, stateDir, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}
