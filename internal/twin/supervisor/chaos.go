// Fault injection: `apgstack chaos` (api.PathChaos) and the SQL functions aurora_inject_*
// (aurora.go) both end in inject, which produces each fault with real signals and real
// sessions, so that what a test sees is what a crashed, hung or cut-off server does:
//
//   - crash-writer: SIGKILL of the writer's postmaster; the health watch (detection.go) sees it
//     exit and fails over (prod, pre-prod) or restarts it in place (dev, test).
//   - hang-writer: SIGSTOP of the writer's postmaster for the duration, then SIGCONT: new sessions
//     hang while open ones still answer; held longer than the health checks allow, the writer is
//     fenced and a failover follows (as for a hung Aurora writer).
//   - crash-reader: SIGKILL of a reader's postmaster; it is restarted after ReaderRestartDelay,
//     as Aurora replaces a failed instance.
//   - stall-replication: SIGSTOP of the reader's WAL receiver (the process pg_stat_wal_receiver
//     names) for the duration, then SIGCONT: nothing more is received or replayed, so the lag
//     grows, and then the receiver catches up. In prod the stalled reader is the synchronous
//     one: commits wait until the supervisor degrades to asynchronous (DegradeAfter).
//   - drop-connections: pg_terminate_backend of every client session (not the supervisor's,
//     which are superuser sessions) on every running instance.

package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"syscall"
	"time"

	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/instance"
)

// Chaos implements api.ChaosBackend.
func (s *Supervisor) Chaos(ctx context.Context, req api.ChaosRequest) (api.ChaosResult, error) {
	if err := req.Check(); err != nil {
		return api.ChaosResult{}, &api.OperationError{Code: http.StatusBadRequest, Message: err.Error()}
	}
	if phase := s.topo.now().phase; phase != api.PhaseReady {
		return api.ChaosResult{}, &api.OperationError{Code: http.StatusConflict, Message: "the cluster is " + phase + ", not ready: try again when `apgstack status` says ready"}
	}
	return s.inject(ctx, req, "apgstack chaos")
}

// inject performs a checked request; by says who asked, for the event.
func (s *Supervisor) inject(ctx context.Context, req api.ChaosRequest, by string) (api.ChaosResult, error) {
	res := api.ChaosResult{Fault: req.Fault, For: req.For}
	conflict := func(format string, args ...any) (api.ChaosResult, error) {
		return res, &api.OperationError{Code: http.StatusConflict, Message: fmt.Sprintf(format, args...)}
	}
	switch req.Fault {
	case api.ChaosCrashWriter, api.ChaosHangWriter:
		w := s.writerInstance()
		if w == nil || !w.Running() {
			return conflict("the writer is not running")
		}
		res.Instance = w.Name
		pid := w.PID()
		if req.Fault == api.ChaosCrashWriter {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				return res, fmt.Errorf("chaos: kill the postmaster of %s: %w", w.Name, err)
			}
			res.Detail = fmt.Sprintf("postmaster %d of writer %s killed (SIGKILL)", pid, w.Name)
			break
		}
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			return res, fmt.Errorf("chaos: stop the postmaster of %s: %w", w.Name, err)
		}
		s.resumeAfter(req.For, w, pid)
		res.Detail = fmt.Sprintf("postmaster %d of writer %s stopped (SIGSTOP) for %s", pid, w.Name, req.For)
	case api.ChaosCrashReader, api.ChaosStallReplication:
		r, err := s.chaosReader(req.Instance)
		if err != nil {
			return conflict("%v", err)
		}
		res.Instance = r.Name
		if req.Fault == api.ChaosCrashReader {
			pid := r.PID()
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				return res, fmt.Errorf("chaos: kill the postmaster of %s: %w", r.Name, err)
			}
			res.Detail = fmt.Sprintf("postmaster %d of reader %s killed (SIGKILL)", pid, r.Name)
			break
		}
		pid, err := walReceiver(ctx, r)
		if err != nil {
			return conflict("%v", err)
		}
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			return res, fmt.Errorf("chaos: stop the WAL receiver of %s: %w", r.Name, err)
		}
		s.resumeAfter(req.For, r, pid)
		res.Detail = fmt.Sprintf("WAL receiver %d of reader %s stopped (SIGSTOP) for %s", pid, r.Name, req.For)
	case api.ChaosDropConnections:
		n, err := s.dropConnections(ctx)
		res.Terminated = n
		if err != nil {
			return res, err
		}
		res.Detail = fmt.Sprintf("%d client sessions terminated", n)
	default:
		return res, &api.OperationError{Code: http.StatusBadRequest, Message: "unknown fault " + req.Fault}
	}
	if res.Instance != "" {
		s.instanceEvent(res.Instance, "notification", "fault injected by %s: %s: %s", by, req.Fault, res.Detail)
	} else {
		s.clusterEvent("notification", "fault injected by %s: %s: %s", by, req.Fault, res.Detail)
	}
	return res, nil
}

// resumeAfter sends SIGCONT to pid after d, or at once when the supervisor stops, unless the
// instance's process is gone meanwhile (a fenced writer: its processes are killed).
func (s *Supervisor) resumeAfter(d time.Duration, i *instance.Instance, pid int) {
	s.ha.wg.Go(func() {
		select {
		case <-time.After(d):
		case <-s.ha.ctx.Done():
		}
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			if !errors.Is(err, syscall.ESRCH) { // ESRCH: gone meanwhile (a fenced writer)
				s.log.Warn("chaos: resume a stopped process", "instance", i.Name, "pid", pid, "err", err)
			}
			return
		}
		s.instanceEvent(i.Name, "notification", "fault ended: process %d resumed (SIGCONT) after %s", pid, d)
	})
}

// chaosReader is the named reader, or the first one; it must be running.
func (s *Supervisor) chaosReader(name string) (*instance.Instance, error) {
	t := s.topo.now()
	if name == "" {
		name = t.firstReader()
		if name == "" {
			return nil, errors.New("the cluster has no reader (dev and test have a single instance)")
		}
	}
	i := t.instances[name]
	if i == nil || t.role(name) != api.RoleReader {
		return nil, fmt.Errorf("instance %q: not a reader of this cluster", name)
	}
	if !i.Running() {
		return nil, fmt.Errorf("reader %s is not running", name)
	}
	return i, nil
}

// walReceiver is the pid of a reader's WAL receiver.
func walReceiver(ctx context.Context, r *instance.Instance) (int, error) {
	conn, err := r.Connect(ctx, "postgres")
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var pid int
	if err := conn.QueryRow(ctx, "SELECT coalesce((SELECT pid FROM pg_stat_wal_receiver), 0)").Scan(&pid); err != nil {
		return 0, fmt.Errorf("reader %s: WAL receiver: %w", r.Name, err)
	}
	if pid == 0 {
		return 0, fmt.Errorf("reader %s: no WAL receiver runs (replication is already down)", r.Name)
	}
	return pid, nil
}

// terminateClients ends every client session but the supervisor's own (superuser) ones.
const terminateClients = `SELECT count(*) FILTER (WHERE pg_terminate_backend(a.pid))
	FROM pg_stat_activity a JOIN pg_roles r ON r.oid = a.usesysid
	WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid() AND NOT r.rolsuper`

// dropConnections terminates the client sessions of every running instance.
func (s *Supervisor) dropConnections(ctx context.Context) (int, error) {
	var running []*instance.Instance
	for _, i := range s.topo.now().instances {
		if i.Running() {
			running = append(running, i)
		}
	}
	total := 0
	var errs []error
	for _, i := range running {
		conn, err := i.Connect(ctx, "postgres")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var n int
		if err := conn.QueryRow(ctx, terminateClients).Scan(&n); err != nil {
			errs = append(errs, fmt.Errorf("instance %s: terminate sessions: %w", i.Name, err))
		}
		conn.Close(ctx)
		total += n
	}
	return total, errors.Join(errs...)
}
