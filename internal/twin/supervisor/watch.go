package supervisor

import (
	"context"
	"fmt"
	"os/user"
	"sync"
	"time"

	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/instance"
)

func currentUser() string {
	u, err := user.Current()
	if err != nil {
		return ""
	}
	return u.Username
}

// monitor watches the instances until ctx ends or a shutdown is requested: it notices servers
// that exit (the topology then leads the reader endpoint to the readers that still serve), keeps
// synchronous replication's bookkeeping (prod) and deletes old server logs.
func (s *Supervisor) monitor(ctx context.Context) {
	// Reader restarts run beside the loop; they end before monitor returns, so that stopAll
	// sees every server they started.
	ctx, cancel := context.WithCancel(ctx)
	var restarts sync.WaitGroup
	defer restarts.Wait()
	defer cancel()
	tick := time.NewTicker(s.opts.PollInterval)
	defer tick.Stop()
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	var gone time.Time // when the synchronous reader was last seen streaming, zero while it streams
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.shutdown:
			s.log.Info("shutdown requested")
			return
		case <-prune.C:
			s.pruneLogs()
		case <-tick.C:
			for _, name := range s.checkInstances() {
				if s.opts.ReaderRestartDelay > 0 {
					restarts.Add(1)
					go func() { defer restarts.Done(); s.restartReader(ctx, name) }()
				}
			}
			if bestpractice.Stage(s.cfg().Environment.Stage).SynchronousReplication {
				gone = s.syncControl(ctx, gone)
			}
		}
	}
}

// checkInstances records servers that exited and returns the readers among them. A dead writer
// is failed over or restarted by failover.go; a dead reader is restarted by restartReader.
func (s *Supervisor) checkInstances() (deadReaders []string) {
	for _, in := range s.observeInstances() {
		if in.Role == api.RoleReader {
			deadReaders = append(deadReaders, in.Name)
		}
		s.instanceEvent(in.Name, "failure", "instance %s stopped unexpectedly", in.Name)
	}
	return deadReaders
}

// restartReader brings back a reader that died, as Aurora replaces a failed instance: after
// ReaderRestartDelay, then with a doubling wait, for as long as it is still a dead reader that
// nothing else (a failover, a rejoin) has taken over.
func (s *Supervisor) restartReader(ctx context.Context, name string) {
	wait := s.opts.ReaderRestartDelay
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.shutdown:
			return
		case <-time.After(wait):
		}
		if !s.claimExitedReader(name) {
			return
		}
		err := s.restartInstance(ctx, name)
		if err == nil {
			return
		}
		s.releaseExitedReader(name)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("reader restart failed; trying again", "instance", name, "in", 2*wait, "err", err)
		wait = min(2*wait, 5*time.Minute)
	}
}

// writerInstance is the recorded writer's server (nil before it was started).
func (s *Supervisor) writerInstance() *instance.Instance { return s.topo.now().writerInstance() }

// enableSync makes the reader synchronous at start (prod) and waits until it is in sync.
func (s *Supervisor) enableSync(ctx context.Context, w *instance.Instance) error {
	reader := s.topo.now().firstReader()
	if reader == "" {
		return nil
	}
	s.progress("synchronous replication to %s", reader)
	mark, err := s.nameStandby(ctx, w, reader)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, s.opts.StartTimeout)
	defer cancel()
	for {
		reps, _, err := w.Replication(wctx)
		if err == nil && inSync(reps[reader], mark) {
			break
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("reader %s does not become synchronous: %w (last: %v)", reader, wctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return s.recordSync(w.Name, SyncState{Standby: reader, InSync: []string{reader}}, 0)
}

// nameStandby makes reader the synchronous standby and returns the writer's WAL position just
// after: commits acknowledged before may have been made without the reader, so it is in sync only
// once it has flushed past that mark.
func (s *Supervisor) nameStandby(ctx context.Context, w *instance.Instance, reader string) (int64, error) {
	if err := w.SetSynchronousStandby(ctx, reader); err != nil {
		return 0, err
	}
	_, mark, err := w.Replication(ctx)
	if err != nil {
		return 0, err
	}
	sync := s.topo.now().state.Sync
	sync.Standby = reader
	return mark, s.recordSync(w.Name, sync, mark)
}

func inSync(r instance.Replication, mark int64) bool {
	return r.State == "streaming" && r.SyncState == "sync" && r.Flush >= mark
}

// syncControl applies the degrade rule: commits wait for the synchronous reader, but not for long.
// When the reader has not streamed for DegradeAfter, the cluster is recorded as degraded with no
// reader in sync (persisted first), then the writer is told to commit alone. When the reader is
// back and has replayed everything, it is named synchronous again, and recorded in sync once it
// has flushed past the writer's position at that moment. It returns when the reader was first
// seen gone (zero while it streams).
func (s *Supervisor) syncControl(ctx context.Context, gone time.Time) time.Time {
	t := s.topo.now()
	w, reader := t.writerInstance(), t.firstReader()
	if w == nil || !w.Running() || reader == "" || t.writer().Role != api.RoleWriter {
		return gone
	}
	qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	reps, _, err := w.Replication(qctx)
	if err != nil {
		s.log.Warn("replication check", "err", err)
		return gone
	}
	rep, ok := reps[reader]
	streaming := ok && rep.State == "streaming"
	sync, mark := t.state.Sync, t.syncMark
	now := time.Now()
	switch {
	case sync.Standby != "" && !streaming:
		if gone.IsZero() {
			return now
		}
		if now.Sub(gone) < s.opts.DegradeAfter {
			return gone
		}
		since := now.UTC()
		// Recorded first: a crash after it can never leave the reader recorded in sync.
		if err := s.recordSync(w.Name, SyncState{Degraded: true, DegradedSince: &since}, 0); err != nil {
			s.log.Error("record degraded state; the writer keeps waiting for the reader", "err", err)
			return gone
		}
		s.clusterEvent("notification", "replication degraded: reader %s gone for %s; the writer commits without it and no reader may be promoted until it has caught up", reader, s.opts.DegradeAfter)
		if err := w.SetSynchronousStandby(qctx, ""); err != nil {
			// Still named on the writer (and still degraded: not in sync): try again at the next
			// tick.
			s.log.Error("degrade", "err", err)
			if err := s.recordSync(w.Name, SyncState{Standby: reader, Degraded: true, DegradedSince: &since}, mark); err != nil {
				s.log.Error("record degraded state", "err", err)
			}
			return gone
		}
		return time.Time{}
	case sync.Standby == "" && streaming && rep.LagBytes == 0:
		if _, err := s.nameStandby(qctx, w, reader); err != nil {
			s.log.Error("restore synchronous replication", "err", err)
		}
		return time.Time{}
	case sync.Degraded && sync.Standby != "" && inSync(rep, mark):
		if err := s.recordSync(w.Name, SyncState{Standby: reader, InSync: []string{reader}}, 0); err != nil {
			s.log.Error("record sync state", "err", err)
			break
		}
		s.clusterEvent("notification", "replication restored: reader %s is synchronous and in sync again", reader)
	}
	if streaming {
		return time.Time{}
	}
	return gone
}

// pruneLogs deletes server logs older than rds.log_retention_period.
func (s *Supervisor) pruneLogs() {
	t := s.topo.now()
	if t.plan.LogRetention == 0 {
		return
	}
	cutoff := time.Now().Add(-t.plan.LogRetention)
	for _, i := range t.instances {
		if n, err := i.PruneLogs(cutoff); err != nil {
			s.log.Warn("prune logs", "instance", i.Name, "err", err)
		} else if n > 0 {
			s.log.Info("deleted old server logs", "instance", i.Name, "files", n)
		}
	}
}
