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
// that exit, keeps the reader endpoint on healthy readers, keeps synchronous replication's
// bookkeeping (prod) and deletes old server logs.
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
			s.updateReaderEndpoint()
			if bestpractice.Stage(s.cfg.Environment.Stage).SynchronousReplication {
				gone = s.syncControl(ctx, gone)
			}
		}
	}
}

// checkInstances records servers that exited and returns the readers among them. A dead writer
// is failed over or restarted by failover.go; a dead reader is restarted by restartReader.
func (s *Supervisor) checkInstances() (deadReaders []string) {
	s.mu.Lock()
	var stopped []string
	roles := map[string]string{}
	for name, i := range s.instances {
		if !i.Running() {
			stopped = append(stopped, name)
			roles[name] = s.roleLocked(name)
		}
	}
	s.mu.Unlock()
	for _, name := range s.markExited(stopped) {
		if roles[name] == api.RoleReader {
			deadReaders = append(deadReaders, name)
		}
		s.event(api.Event{SourceType: bestpractice.SourceInstance, SourceID: name, Category: "failure", Message: "instance " + name + " stopped unexpectedly"})
	}
	return deadReaders
}

// roleLocked is an instance's role; s.mu must be held.
func (s *Supervisor) roleLocked(name string) string {
	for _, in := range s.state.Instances {
		if in.Name == name {
			return in.Role
		}
	}
	return ""
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
		s.mu.Lock()
		i := s.instances[name]
		still := i != nil && !i.Running() && s.conds.of(name).kind == condExited && s.roleLocked(name) == api.RoleReader
		s.mu.Unlock()
		if !still {
			return
		}
		err := s.restartInstance(ctx, name)
		if err == nil || ctx.Err() != nil {
			return
		}
		s.log.Warn("reader restart failed; trying again", "instance", name, "in", 2*wait, "err", err)
		wait = min(2*wait, 5*time.Minute)
	}
}

// updateReaderEndpoint points the reader endpoint at the running readers, or at the writer when
// there is none (as Aurora's reader endpoint does).
func (s *Supervisor) updateReaderEndpoint() {
	s.mu.Lock()
	var readers []string
	writer := ""
	for _, in := range s.state.Instances {
		i := s.instances[in.Name]
		if i == nil || !i.Running() {
			continue
		}
		if in.Role == api.RoleWriter {
			writer = addr(in.Port)
		} else {
			readers = append(readers, addr(in.Port))
		}
	}
	s.mu.Unlock()
	if len(readers) == 0 && writer != "" {
		readers = []string{writer}
	}
	if s.readerEP != nil {
		s.readerEP.SetBackends(readers)
		if writer != "" {
			s.readerEP.SetFallback([]string{writer})
		}
	}
}

func (s *Supervisor) writerInstance() *instance.Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, in := range s.state.Instances {
		if in.Role == api.RoleWriter {
			return s.instances[in.Name]
		}
	}
	return nil
}

func (s *Supervisor) firstReader() string {
	s.mu.Lock() // failover swaps roles from another goroutine
	defer s.mu.Unlock()
	for _, in := range s.state.Instances {
		if in.Role == api.RoleReader {
			return in.Name
		}
	}
	return ""
}

// enableSync makes the reader synchronous at start (prod) and waits until it is in sync.
func (s *Supervisor) enableSync(ctx context.Context, w *instance.Instance) error {
	reader := s.firstReader()
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
	s.mu.Lock()
	s.state.Sync = SyncState{Standby: reader, InSync: []string{reader}}
	s.syncMark = 0
	s.mu.Unlock()
	return s.saveState()
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
	s.mu.Lock()
	s.state.Sync.Standby = reader
	s.syncMark = mark
	s.mu.Unlock()
	return mark, nil
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
	w := s.writerInstance()
	reader := s.firstReader()
	if w == nil || !w.Running() || reader == "" {
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
	s.mu.Lock()
	sync, mark := s.state.Sync, s.syncMark
	s.mu.Unlock()
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
		s.mu.Lock()
		s.state.Sync = SyncState{Degraded: true, DegradedSince: &since}
		s.mu.Unlock()
		if err := s.saveState(); err != nil {
			s.log.Error("record degraded state; the writer keeps waiting for the reader", "err", err)
			return gone
		}
		s.event(api.Event{SourceType: bestpractice.SourceCluster, SourceID: s.cfg.Database.StackName, Category: "notification",
			Message: fmt.Sprintf("replication degraded: reader %s gone for %s; the writer commits without it and no reader may be promoted until it has caught up", reader, s.opts.DegradeAfter)})
		if err := w.SetSynchronousStandby(qctx, ""); err != nil {
			// Still named on the writer: try again at the next tick.
			s.log.Error("degrade", "err", err)
			s.mu.Lock()
			s.state.Sync.Standby = reader
			s.mu.Unlock()
			return gone
		}
		return time.Time{}
	case sync.Standby == "" && streaming && rep.LagBytes == 0:
		if _, err := s.nameStandby(qctx, w, reader); err != nil {
			s.log.Error("restore synchronous replication", "err", err)
		}
		return time.Time{}
	case sync.Degraded && sync.Standby != "" && inSync(rep, mark):
		s.mu.Lock()
		s.state.Sync = SyncState{Standby: reader, InSync: []string{reader}}
		s.syncMark = 0
		s.mu.Unlock()
		if err := s.saveState(); err != nil {
			s.log.Error("record sync state", "err", err)
		}
		s.event(api.Event{SourceType: bestpractice.SourceCluster, SourceID: s.cfg.Database.StackName, Category: "notification",
			Message: fmt.Sprintf("replication restored: reader %s is synchronous and in sync again", reader)})
	}
	if streaming {
		return time.Time{}
	}
	return gone
}

// pruneLogs deletes server logs older than rds.log_retention_period.
func (s *Supervisor) pruneLogs() {
	if s.plan.LogRetention == 0 {
		return
	}
	s.mu.Lock()
	list := make([]*instance.Instance, 0, len(s.instances))
	for _, i := range s.instances {
		list = append(list, i)
	}
	s.mu.Unlock()
	cutoff := time.Now().Add(-s.plan.LogRetention)
	for _, i := range list {
		if n, err := i.PruneLogs(cutoff); err != nil {
			s.log.Warn("prune logs", "instance", i.Name, "err", err)
		} else if n > 0 {
			s.log.Info("deleted old server logs", "instance", i.Name, "files", n)
		}
	}
}
