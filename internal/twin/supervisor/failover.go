// Orchestration of failovers and switchovers: fence the old writer, choose a reader, promote it,
// repoint the endpoints. The old writer then rejoins as a reader (rejoin.go).

package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/instance"
)

// Tuning of the failover itself; the health watch has its own (detection.go).
var (
	// pauseBound is how long the writer endpoint holds new connections during a failover.
	pauseBound = 30 * time.Second
	// catchUpTimeout bounds a planned switchover's wait for the reader.
	catchUpTimeout = 30 * time.Second
)

// haState is the failover and rotation machinery's part of the supervisor.
type haState struct {
	op  sync.Mutex // one failover, switchover or rejoin at a time
	rot sync.Mutex // one rotation at a time
	wg  sync.WaitGroup
	ctx context.Context // the background work's; ends at shutdown
}

// startHA starts the failover watch and the rotation schedule; the returned function stops them
// and waits (before the servers are stopped).
func (s *Supervisor) startHA(ctx context.Context) func() {
	ctx, cancel := context.WithCancel(ctx)
	s.ha.ctx = ctx
	s.ha.wg.Go(func() { s.watch(ctx) })
	s.ha.wg.Go(func() { s.rotationSchedule(ctx) })
	s.ha.wg.Go(func() { s.auroraWatch(ctx) }) // Aurora's fault-injection functions (aurora.go)
	return func() {
		cancel()
		s.ha.wg.Wait()
	}
}

func (s *Supervisor) clusterEvent(category, format string, args ...any) {
	s.event(api.Event{SourceType: bestpractice.SourceCluster, SourceID: s.cfg().Database.StackName, Category: category, Message: fmt.Sprintf(format, args...)})
}

func (s *Supervisor) instanceEvent(name, category, format string, args ...any) {
	s.event(api.Event{SourceType: bestpractice.SourceInstance, SourceID: name, Category: category, Message: fmt.Sprintf(format, args...)})
}

func describe(res api.Failover) string {
	var b strings.Builder
	switch res.Kind {
	case api.FailoverRestart:
		fmt.Fprintf(&b, "writer %s restarted in place (no reader may be promoted)", res.OldWriter)
	default:
		fmt.Fprintf(&b, "%s promoted to writer in place of %s", res.NewWriter, res.OldWriter)
	}
	fmt.Fprintf(&b, " in %s; the writer endpoint held new connections for %s", res.Duration.Round(time.Millisecond), res.Paused.Round(time.Millisecond))
	if res.WriterLSN != "" {
		fmt.Fprintf(&b, "; the new writer had replayed the old writer's last WAL position %s", res.WriterLSN)
	}
	if res.Warning != "" {
		b.WriteString("; " + res.Warning)
	}
	return b.String()
}

// Failover implements api.Operator: a planned switchover with no acknowledged write lost. The
// writer endpoint holds new connections, the old writer's sessions end, the old writer checkpoints
// and shuts down cleanly, the reader replays up to the old writer's last WAL record and is
// promoted, the endpoint is repointed, and the old writer rejoins as a reader. A cluster without
// readers (dev, test) restarts its writer in place; one whose readers cannot take over now is
// left as it is (409).
func (s *Supervisor) Failover(ctx context.Context, target string) (api.Failover, error) {
	s.ha.op.Lock()
	defer s.ha.op.Unlock()
	t := s.topo.now()
	if t.phase != api.PhaseReady {
		return api.Failover{}, &api.OperationError{Code: http.StatusConflict, Message: "the cluster is " + t.phase + ", not ready: try again when `apgstack status` says ready"}
	}
	w := t.writerInstance()
	if w == nil || !w.Running() {
		return api.Failover{}, &api.OperationError{Code: http.StatusConflict, Message: "the writer is not running; an automatic failover is under way or has failed (see `apgstack events`)"}
	}
	if target != "" {
		i, role := t.instances[target], t.role(target)
		switch {
		case role == "":
			return api.Failover{}, &api.OperationError{Code: http.StatusBadRequest, Message: fmt.Sprintf("target %q: no such instance (instances: %s)", target, strings.Join(t.names(), ", "))}
		case role != api.RoleReader:
			return api.Failover{}, &api.OperationError{Code: http.StatusBadRequest, Message: fmt.Sprintf("target %q is the writer already: name a reader", target)}
		case i == nil || !i.Running():
			return api.Failover{}, &api.OperationError{Code: http.StatusConflict, Message: fmt.Sprintf("target %q is not running", target)}
		}
	}
	s.clusterEvent("failover", "switchover started: writer %s%s", w.Name, map[bool]string{true: " to " + target, false: ""}[target != ""])
	res, err := s.failover(ctx, w, target, true)
	if err != nil {
		s.clusterEvent("failure", "switchover from %s failed: %v", w.Name, err)
		return res, err
	}
	s.clusterEvent("failover", "switchover completed: %s", describe(res))
	return res, nil
}

// failover replaces the writer old. Planned: old is healthy and shuts down cleanly after the
// reader caught up. Unplanned: old is fenced for sure first (its sessions cut at the endpoint,
// every process of it killed). Called with s.ha.op held.
//
// The steps: hold the writer endpoint and cut the old writer's sessions; choose a reader; stop
// the old writer (drained and caught up, stopped, or fenced); promote the reader and repoint the
// endpoints (or, with no reader, restart the old writer in place); the old writer rejoins as a
// reader.
func (s *Supervisor) failover(ctx context.Context, old *instance.Instance, target string, planned bool) (api.Failover, error) {
	// Once begun, a failover runs to its end even when the supervisor is asked to stop (which
	// waits for it): stopped halfway, it could leave a promoted reader recorded as a reader. The
	// rejoin that follows may be cancelled: the next start completes it.
	outer := ctx
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
	defer cancel()
	t := s.holdWriter(old, planned)
	defer t.resume() // a safety net: every path resumes as soon as the endpoint may serve

	cand, err := s.candidate(ctx, target, planned)
	if err != nil {
		s.log.Warn("no reader to promote", "err", err)
	}
	switch {
	case planned && cand == nil && len(s.topo.now().readers()) > 0:
		// Asked to switch over, but no reader can take over now: nothing changes.
		s.clearCondition(old.Name)
		t.resume()
		return t.res, &api.OperationError{Code: http.StatusConflict, Message: "no reader can take over now: " + err.Error()}
	case planned && cand != nil:
		lsn, err := s.drainWriter(ctx, old, cand)
		if err != nil {
			// Nothing changed roles: the old writer serves again.
			s.clearCondition(old.Name)
			if !old.Running() {
				if rerr := s.restartWithRetry(ctx, old.Name); rerr != nil {
					err = errors.Join(err, rerr)
				}
			}
			t.resume()
			return t.res, err
		}
		t.res.WriterLSN = lsn
		s.crashPoint(CrashAfterDrain)
	case planned:
		// No reader: a clean restart in place.
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := old.Stop(sctx)
		cancel()
		if err != nil {
			s.log.Warn("stop the writer", "instance", old.Name, "err", err)
		}
	default:
		s.fence(old)
		s.crashPoint(CrashAfterFence)
	}

	if cand == nil {
		return s.restartInPlace(ctx, t)
	}
	if err := s.promoteAndRepoint(ctx, t, cand); err != nil {
		return t.res, err
	}
	if planned {
		if err := s.rejoin(outer, old.Name); err != nil {
			t.res.Warning = fmt.Sprintf("the old writer %s did not rejoin as a reader yet: %v", old.Name, err)
		} else {
			t.res.Rejoined = true
		}
	} else {
		s.ha.wg.Go(func() { s.rejoinLater(s.ha.ctx, old.Name) })
	}
	return t.res, nil
}

// takeover is a failover under way: the writer endpoint holds new connections until resume.
type takeover struct {
	s       *Supervisor
	old     *instance.Instance
	res     api.Failover
	start   time.Time
	paused  time.Time
	resumed bool
}

// holdWriter pauses the writer endpoint and cuts its sessions to the old writer: from here on no
// new session reaches the old writer. The old writer's condition is failing over, so that nothing
// restarts it as a writer by accident, until the failover clears or replaces that condition.
func (s *Supervisor) holdWriter(old *instance.Instance, planned bool) *takeover {
	t := &takeover{s: s, old: old, res: api.Failover{Planned: planned, OldWriter: old.Name}, start: time.Now()}
	s.writerEP.Pause(pauseBound)
	t.paused = time.Now()
	n := s.writerEP.CloseConnectionsTo(addr(old.Port))
	// Failing over, it is not restarted as a writer by the watch (watch.go, restartReader).
	s.setCondition(old.Name, condition{kind: condFailingOver})
	s.log.Info("writer endpoint paused and its sessions to the old writer closed", "instance", old.Name, "closed", n)
	return t
}

// resume lets the writer endpoint's new connections through again, once.
func (t *takeover) resume() {
	if t.resumed {
		return
	}
	t.resumed = true
	t.s.writerEP.Resume()
	t.res.Paused = time.Since(t.paused)
}

// restartInPlace brings back a writer that has no reader to take over.
func (s *Supervisor) restartInPlace(ctx context.Context, t *takeover) (api.Failover, error) {
	old := t.old
	t.res.Kind, t.res.NewWriter = api.FailoverRestart, old.Name
	if err := s.restartWithRetry(ctx, old.Name); err != nil {
		s.setFailed(old.Name, "restart after failover failed: "+err.Error())
		t.resume()
		return t.res, fmt.Errorf("restart the writer %s: %w", old.Name, err)
	}
	s.pointWriter(old.Name)
	t.resume()
	t.res.Duration = time.Since(t.start)
	t.res.Rejoined = true
	return t.res, nil
}

// promoteAndRepoint promotes cand, records the old writer as due to rejoin and points the
// endpoints at the new writer. When the promotion fails the old writer is brought back rather
// than leave none.
func (s *Supervisor) promoteAndRepoint(ctx context.Context, t *takeover, cand *instance.Instance) error {
	old := t.old
	t.res.Kind, t.res.NewWriter = api.FailoverPromote, cand.Name
	s.log.Info("promoting", "instance", cand.Name, "after", time.Since(t.start))
	if err := s.promote(ctx, cand, old); err != nil {
		// The reader is still a reader.
		s.log.Error("promotion failed; restarting the old writer", "instance", cand.Name, "err", err)
		if rerr := s.restartWithRetry(ctx, old.Name); rerr != nil {
			t.resume()
			return errors.Join(err, rerr)
		}
		s.pointWriter(old.Name)
		t.resume()
		return err
	}
	if err := s.markRejoin(old.Name, true); err != nil {
		s.log.Error("record the old writer as due to rejoin", "instance", old.Name, "err", err)
	}
	s.setCondition(old.Name, condition{kind: condRejoining, detail: cand.Name})
	s.crashPoint(CrashBeforeEndpointSwitch)
	s.pointWriter(cand.Name) // and the reader endpoint to the readers that serve (topology.go)
	t.resume()
	s.crashPoint(CrashAfterEndpointSwitch)
	// Sessions that came through the reader endpoint to the promoted reader could now write.
	if n := s.readerEP.CloseConnectionsTo(addr(cand.Port)); n > 0 {
		s.log.Info("reader endpoint sessions to the new writer closed", "instance", cand.Name, "closed", n)
	}
	t.res.Duration = time.Since(t.start)
	s.instanceEvent(cand.Name, "failover", "instance %s promoted to writer", cand.Name)
	return nil
}

// restartWithRetry restarts an instance in place. A process of the killed server that is still
// exiting (or a child of its archiver) can hold its shared memory for a moment, and PostgreSQL
// then refuses to start: that is tried again for a few seconds.
func (s *Supervisor) restartWithRetry(ctx context.Context, name string) error {
	var err error
	for attempt := 1; attempt <= 8; attempt++ {
		if err = s.restartInstance(ctx, name); err == nil || ctx.Err() != nil {
			return err
		}
		s.log.Warn("restart failed; trying again", "instance", name, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * 250 * time.Millisecond):
		}
	}
	return err
}

// fence makes sure nothing of the old writer runs: a hung postmaster (SIGSTOP) or backends it
// left behind could otherwise still commit, and would keep its shared memory so that it cannot
// start again.
func (s *Supervisor) fence(old *instance.Instance) {
	if err := old.Fence(); err != nil {
		s.log.Error("fence the old writer", "instance", old.Name, "err", err)
	}
	s.setCondition(old.Name, condition{kind: condFenced})
	s.instanceEvent(old.Name, "availability", "instance %s fenced: its sessions were closed at the writer endpoint and its processes killed", old.Name)
}

// candidate picks the reader to promote: target, or the most advanced reader that may be
// promoted. Unplanned, in a synchronous stage, only a reader known to hold every acknowledged
// commit may be (the degrade rule). nil when there is none.
func (s *Supervisor) candidate(ctx context.Context, target string, planned bool) (*instance.Instance, error) {
	t := s.topo.now()
	sync := t.state.Sync
	var readers []*instance.Instance
	var why []string
	for _, in := range t.readers() {
		switch {
		case target != "" && in.Name != target:
		case t.serving(in.Name):
			readers = append(readers, t.instances[in.Name])
		case t.cond(in.Name).kind != condNone:
			why = append(why, in.Name+": "+t.cond(in.Name).message())
		default:
			why = append(why, in.Name+" does not run")
		}
	}
	syncStage := bestpractice.Stage(t.cfg.Environment.Stage).SynchronousReplication
	var best *instance.Instance
	var bestLSN uint64
	for _, r := range readers {
		// A planned switchover catches the reader up first, so any reader will do.
		if syncStage && !planned && (sync.Degraded || !slices.Contains(sync.InSync, r.Name)) {
			why = append(why, r.Name+" is not known to be in sync")
			continue
		}
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		h, err := r.Health(hctx)
		cancel()
		if err != nil {
			why = append(why, fmt.Sprintf("%s: %v", r.Name, err))
			continue
		}
		lsn, _ := instance.ParseLSN(h.ReceiveLSN)
		if replay, _ := instance.ParseLSN(h.LSN); replay > lsn {
			lsn = replay
		}
		if best == nil || lsn > bestLSN {
			best, bestLSN = r, lsn
		}
	}
	if best == nil {
		if len(why) == 0 {
			why = append(why, "the cluster has no reader")
		}
		return nil, errors.New(strings.Join(why, "; "))
	}
	return best, nil
}

// drainWriter ends the old writer's sessions, checkpoints, waits until the reader has replayed
// the writer's WAL, shuts the writer down cleanly and waits until the reader has replayed its
// shutdown checkpoint too: then the reader holds everything the writer ever acknowledged, and
// the old writer can follow the new one without a rewind. It returns the old writer's last
// WAL position.
func (s *Supervisor) drainWriter(ctx context.Context, old, reader *instance.Instance) (string, error) {
	lsn, err := old.Drain(ctx)
	if err != nil {
		return "", fmt.Errorf("switchover: %w", err)
	}
	if err := waitReplayed(ctx, reader, lsn, false); err != nil {
		return "", err
	}
	s.setCondition(old.Name, condition{kind: condDemoting})
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	err = old.Stop(sctx)
	cancel()
	if err != nil {
		return "", fmt.Errorf("switchover: stop the writer %s: %w", old.Name, err)
	}
	final, err := old.LastCheckpoint(ctx)
	if err != nil {
		return "", err
	}
	if err := waitReplayed(ctx, reader, final, true); err != nil {
		return "", err
	}
	return final, nil
}

// waitReplayed waits, at most catchUpTimeout, until reader has replayed WAL up to lsn (past it
// when after is set: lsn is the start of the last record).
func waitReplayed(ctx context.Context, reader *instance.Instance, lsn string, after bool) error {
	ctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
	defer cancel()
	if err := reader.WaitReplayed(ctx, lsn, after); err != nil {
		return fmt.Errorf("switchover: %w", err)
	}
	return nil
}

// promote makes cand the writer and old a reader in the state: cand commits alone until the old
// writer has rejoined and caught up (in a synchronous stage the cluster counts as degraded until
// then, so that only an in-sync reader may be promoted).
func (s *Supervisor) promote(ctx context.Context, cand, old *instance.Instance) error {
	pctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	began := time.Now()
	if err := cand.Promote(pctx); err != nil {
		return err
	}
	s.log.Info("promoted", "instance", cand.Name, "took", time.Since(began))
	s.crashPoint(CrashAfterPromote)
	// From here cand is the writer whatever else fails. A synchronous standby name carried over
	// from an earlier role would make it wait for nobody.
	if err := cand.SetSynchronousStandby(pctx, ""); err != nil {
		s.log.Error("new writer: clear synchronous_standby_names", "instance", cand.Name, "err", err)
	}
	if err := cand.EnsureSlot(pctx, old.Name); err != nil {
		s.log.Error("new writer: replication slot for the old writer", "instance", cand.Name, "err", err)
	}
	if err := s.recordPromotion(cand.Name, bestpractice.Stage(s.cfg().Environment.Stage).SynchronousReplication); err != nil {
		// state.json still names the old writer; the next start trusts the data (reconcile.go).
		s.log.Error("record the new roles", "err", err)
	}
	return nil
}
