// Orchestration of failovers and switchovers: fence the old writer, choose a reader, promote it,
// repoint the endpoints. The old writer then rejoins as a reader (rejoin.go).

package supervisor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
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
	// rejoining holds old writers waiting to rejoin as readers (guarded by Supervisor.mu): a plain
	// restart would make them a second writer.
	rejoining map[string]bool
}

// startHA starts the failover watch and the rotation schedule; the returned function stops them
// and waits (before the servers are stopped).
func (s *Supervisor) startHA(ctx context.Context) func() {
	ctx, cancel := context.WithCancel(ctx)
	s.ha.ctx = ctx
	s.mu.Lock()
	s.ha.rejoining = map[string]bool{}
	s.mu.Unlock()
	s.ha.wg.Go(func() { s.watch(ctx) })
	s.ha.wg.Go(func() { s.rotationSchedule(ctx) })
	return func() {
		cancel()
		s.ha.wg.Wait()
	}
}

func (s *Supervisor) clusterEvent(category, format string, args ...any) {
	s.event(api.Event{SourceType: bestpractice.SourceCluster, SourceID: s.cfg.Database.StackName, Category: category, Message: fmt.Sprintf(format, args...)})
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
	s.mu.Lock()
	phase := s.phase
	s.mu.Unlock()
	if phase != api.PhaseReady {
		return api.Failover{}, &api.OperationError{Code: http.StatusConflict, Message: "the cluster is " + phase + ", not ready: try again when `apgstack status` says ready"}
	}
	w := s.writerInstance()
	if w == nil || !w.Running() {
		return api.Failover{}, &api.OperationError{Code: http.StatusConflict, Message: "the writer is not running; an automatic failover is under way or has failed (see `apgstack events`)"}
	}
	if target != "" {
		s.mu.Lock()
		i := s.instances[target]
		role := ""
		for _, in := range s.state.Instances {
			if in.Name == target {
				role = in.Role
			}
		}
		s.mu.Unlock()
		switch {
		case role == "":
			return api.Failover{}, &api.OperationError{Code: http.StatusBadRequest, Message: fmt.Sprintf("target %q: no such instance (instances: %s)", target, strings.Join(s.instanceNames(), ", "))}
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

func (s *Supervisor) hasReaders() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, in := range s.state.Instances {
		if in.Role == api.RoleReader {
			return true
		}
	}
	return false
}

func (s *Supervisor) instanceNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, in := range s.state.Instances {
		out = append(out, in.Name)
	}
	return out
}

// failover replaces the writer old. Planned: old is healthy and shuts down cleanly after the
// reader caught up. Unplanned: old is fenced for sure first (its sessions cut at the endpoint,
// every process of it killed). Called with s.ha.op held.
func (s *Supervisor) failover(ctx context.Context, old *instance.Instance, target string, planned bool) (api.Failover, error) {
	// Once begun, a failover runs to its end even when the supervisor is asked to stop (which
	// waits for it): stopped halfway, it could leave a promoted reader recorded as a reader. The
	// rejoin that follows may be cancelled: the next start completes it.
	outer := ctx
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
	defer cancel()
	start := time.Now()
	res := api.Failover{Planned: planned, OldWriter: old.Name}
	oldAddr := addr(old.Port)

	// Fence: from here on no new session reaches the old writer, and the open ones are cut.
	s.writerEP.Pause(pauseBound)
	paused := time.Now()
	resume := func() {
		s.writerEP.Resume()
		res.Paused = time.Since(paused)
	}
	n := s.writerEP.CloseConnectionsTo(oldAddr)
	s.mu.Lock()
	s.ha.rejoining[old.Name] = true // whatever happens, it never restarts as a writer by accident
	s.mu.Unlock()
	s.log.Info("writer endpoint paused and its sessions to the old writer closed", "instance", old.Name, "closed", n)
	s.mu.Lock()
	s.failed[old.Name] = "failing over"
	s.mu.Unlock()
	// Paths that keep the old writer a writer clear the mark.
	keep := func() {
		s.mu.Lock()
		delete(s.ha.rejoining, old.Name)
		s.mu.Unlock()
	}

	cand, err := s.candidate(ctx, target, planned)
	if err != nil {
		s.log.Warn("no reader to promote", "err", err)
	}
	if planned && cand == nil && s.hasReaders() {
		// Asked to switch over, but no reader can take over now: nothing changes.
		keep()
		s.mu.Lock()
		delete(s.failed, old.Name)
		s.mu.Unlock()
		resume()
		return res, &api.OperationError{Code: http.StatusConflict, Message: "no reader can take over now: " + err.Error()}
	}
	if planned && cand != nil {
		lsn, err := s.drainWriter(ctx, old, cand)
		if err != nil {
			// Nothing changed roles: the old writer serves again.
			keep()
			s.mu.Lock()
			delete(s.failed, old.Name)
			s.mu.Unlock()
			if !old.Running() {
				if rerr := s.restartWithRetry(ctx, old.Name); rerr != nil {
					err = errors.Join(err, rerr)
				}
			}
			resume()
			return res, err
		}
		res.WriterLSN = lsn
	} else if planned {
		// No reader: a clean restart in place.
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := old.Stop(sctx)
		cancel()
		if err != nil {
			s.log.Warn("stop the writer", "instance", old.Name, "err", err)
		}
	} else {
		s.fence(old)
	}

	if cand == nil {
		keep()
		res.Kind, res.NewWriter = api.FailoverRestart, old.Name
		if err := s.restartWithRetry(ctx, old.Name); err != nil {
			s.mu.Lock()
			s.failed[old.Name] = "restart after failover failed: " + err.Error()
			s.mu.Unlock()
			resume()
			return res, fmt.Errorf("restart the writer %s: %w", old.Name, err)
		}
		s.writerEP.SetBackends([]string{oldAddr})
		resume()
		res.Duration = time.Since(start)
		res.Rejoined = true
		return res, nil
	}

	res.Kind, res.NewWriter = api.FailoverPromote, cand.Name
	s.log.Info("promoting", "instance", cand.Name, "after", time.Since(start))
	if err := s.promote(ctx, cand, old); err != nil {
		// The reader is still a reader: bring the old writer back rather than leave none.
		s.log.Error("promotion failed; restarting the old writer", "instance", cand.Name, "err", err)
		keep()
		if rerr := s.restartWithRetry(ctx, old.Name); rerr != nil {
			resume()
			return res, errors.Join(err, rerr)
		}
		s.writerEP.SetBackends([]string{oldAddr})
		resume()
		return res, err
	}
	if err := s.markRejoin(old.Name, true); err != nil {
		s.log.Error("record the old writer as due to rejoin", "instance", old.Name, "err", err)
	}
	s.writerEP.SetBackends([]string{addr(cand.Port)})
	resume()
	s.updateReaderEndpoint()
	// Sessions that came through the reader endpoint to the promoted reader could now write.
	if n := s.readerEP.CloseConnectionsTo(addr(cand.Port)); n > 0 {
		s.log.Info("reader endpoint sessions to the new writer closed", "instance", cand.Name, "closed", n)
	}
	res.Duration = time.Since(start)
	s.instanceEvent(cand.Name, "failover", "instance %s promoted to writer", cand.Name)

	if planned {
		if err := s.rejoin(outer, old.Name); err != nil {
			res.Warning = fmt.Sprintf("the old writer %s did not rejoin as a reader yet: %v", old.Name, err)
		} else {
			res.Rejoined = true
		}
	} else {
		s.ha.wg.Go(func() { s.rejoinLater(s.ha.ctx, old.Name) })
	}
	return res, nil
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
// start again. PostgreSQL's children are not in the postmaster's process group (they call
// setsid()) and outlive a killed postmaster, so every process working in its data directory is
// killed (we are root or the server account).
func (s *Supervisor) fence(old *instance.Instance) {
	kill := func() int {
		pids := old.Processes() // zombies have no working directory: they are not listed
		select {
		case <-old.Done(): // the postmaster is reaped
		default:
			if pid := old.PID(); pid > 0 {
				pids = append(pids, pid)
			}
		}
		alive := 0
		for _, pid := range pids {
			if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
				alive++
			} else if !errors.Is(err, syscall.ESRCH) {
				s.log.Error("fence: kill an old writer's process", "instance", old.Name, "pid", pid, "err", err)
			}
		}
		return alive
	}
	deadline := time.Now().Add(10 * time.Second)
	for kill() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-old.Done():
	case <-time.After(time.Until(deadline)):
		s.log.Error("fence: the old writer's postmaster did not exit", "instance", old.Name)
	}
	s.instanceEvent(old.Name, "availability", "instance %s fenced: its sessions were closed at the writer endpoint and its processes killed", old.Name)
}

// candidate picks the reader to promote: target, or the most advanced reader that may be
// promoted. Unplanned, in a synchronous stage, only a reader known to hold every acknowledged
// commit may be (the degrade rule). nil when there is none.
func (s *Supervisor) candidate(ctx context.Context, target string, planned bool) (*instance.Instance, error) {
	s.mu.Lock()
	sync := s.state.Sync
	var readers []*instance.Instance
	for _, in := range s.state.Instances {
		if in.Role == api.RoleReader && (target == "" || in.Name == target) {
			if i := s.instances[in.Name]; i != nil && i.Running() && s.failed[in.Name] == "" {
				readers = append(readers, i)
			}
		}
	}
	s.mu.Unlock()
	syncStage := bestpractice.Stage(s.cfg.Environment.Stage).SynchronousReplication
	var best *instance.Instance
	var bestLSN uint64
	var why []string
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
		lsn, _ := parseLSN(h.ReceiveLSN)
		if replay, _ := parseLSN(h.LSN); replay > lsn {
			lsn = replay
		}
		if best == nil || lsn > bestLSN {
			best, bestLSN = r, lsn
		}
	}
	if best == nil {
		if len(why) == 0 {
			why = append(why, "no reader runs")
		}
		return nil, errors.New(strings.Join(why, "; "))
	}
	return best, nil
}

// parseLSN turns "X/Y" into a byte position.
func parseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("WAL position %q: not X/Y", s)
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("WAL position %q: %w", s, err)
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("WAL position %q: %w", s, err)
	}
	return h<<32 | l, nil
}

// drainWriter ends the old writer's sessions, checkpoints, waits until the reader has replayed
// the writer's WAL, shuts the writer down cleanly and waits until the reader has replayed its
// shutdown checkpoint too: then the reader holds everything the writer ever acknowledged, and
// the old writer can follow the new one without a rewind. It returns the old writer's last
// WAL position.
func (s *Supervisor) drainWriter(ctx context.Context, old, reader *instance.Instance) (string, error) {
	conn, err := old.Connect(ctx, "postgres")
	if err != nil {
		return "", err
	}
	var lsn string
	_, err = conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")
	if err == nil {
		_, err = conn.Exec(ctx, "CHECKPOINT")
	}
	if err == nil {
		err = conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn)
	}
	conn.Close(context.Background())
	if err != nil {
		return "", fmt.Errorf("switchover: drain the writer %s: %w", old.Name, err)
	}
	if err := waitReplayed(ctx, reader, lsn, false); err != nil {
		return "", err
	}
	s.mu.Lock()
	s.failed[old.Name] = "switchover: becoming a reader"
	s.mu.Unlock()
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	err = old.Stop(sctx)
	cancel()
	if err != nil {
		return "", fmt.Errorf("switchover: stop the writer %s: %w", old.Name, err)
	}
	final, err := s.lastCheckpoint(ctx, old)
	if err != nil {
		return "", err
	}
	if err := waitReplayed(ctx, reader, final, true); err != nil {
		return "", err
	}
	return final, nil
}

// waitReplayed waits until reader has replayed WAL up to lsn (past it when after is set: lsn is
// the start of the last record).
func waitReplayed(ctx context.Context, reader *instance.Instance, lsn string, after bool) error {
	ctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
	defer cancel()
	op := ">="
	if after {
		op = ">"
	}
	var last string
	for {
		conn, err := reader.Connect(ctx, "postgres")
		if err == nil {
			var ok bool
			err = conn.QueryRow(ctx, "SELECT coalesce(pg_last_wal_replay_lsn()::text, ''), coalesce(pg_last_wal_replay_lsn() "+op+" $1::pg_lsn, false)", lsn).Scan(&last, &ok)
			conn.Close(context.Background())
			if err == nil && ok {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("switchover: reader %s did not replay the writer's WAL up to %s (replayed %s, last error %v): %w", reader.Name, lsn, last, err, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// lastCheckpoint reads the location of a stopped server's last checkpoint from pg_control.
func (s *Supervisor) lastCheckpoint(ctx context.Context, i *instance.Instance) (string, error) {
	cmd := s.acct.Command(ctx, s.bin.Path("pg_controldata"), "-D", i.DataDir())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("pg_controldata %s: %w: %s", i.Name, err, strings.TrimSpace(out.String()))
	}
	var state, loc string
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "Database cluster state":
			state = strings.TrimSpace(v)
		case "Latest checkpoint location":
			loc = strings.TrimSpace(v)
		}
	}
	if state != "shut down" {
		return "", fmt.Errorf("instance %s did not shut down cleanly (pg_control says %q)", i.Name, state)
	}
	if loc == "" {
		return "", fmt.Errorf("pg_controldata %s: no latest checkpoint location", i.Name)
	}
	return loc, nil
}

// promote makes cand the writer and old a reader in the state: cand commits alone until the old
// writer has rejoined and caught up (in a synchronous stage the cluster counts as degraded until
// then, so that only an in-sync reader may be promoted).
func (s *Supervisor) promote(ctx context.Context, cand, old *instance.Instance) error {
	pctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	began := time.Now()
	if err := promoteNow(pctx, cand); err != nil {
		return err
	}
	s.log.Info("promoted", "instance", cand.Name, "took", time.Since(began))
	// From here cand is the writer whatever else fails. A synchronous standby name carried over
	// from an earlier role would make it wait for nobody.
	if err := setStandby(pctx, cand, ""); err != nil {
		s.log.Error("new writer: clear synchronous_standby_names", "instance", cand.Name, "err", err)
	}
	if err := ensureSlot(pctx, cand, old.Name); err != nil {
		s.log.Error("new writer: replication slot for the old writer", "instance", cand.Name, "err", err)
	}
	now := time.Now().UTC()
	s.mu.Lock()
	for i := range s.state.Instances {
		switch s.state.Instances[i].Name {
		case cand.Name:
			s.state.Instances[i].Role = api.RoleWriter
		case old.Name:
			s.state.Instances[i].Role = api.RoleReader
		}
	}
	if bestpractice.Stage(s.cfg.Environment.Stage).SynchronousReplication {
		s.state.Sync = SyncState{Degraded: true, DegradedSince: &now}
	} else {
		s.state.Sync = SyncState{}
	}
	s.syncMark = 0
	s.mu.Unlock()
	if err := s.saveState(); err != nil {
		s.log.Error("record the new roles", "err", err)
	}
	return nil
}

// promoteNow promotes a reader and waits until it accepts writes. The promotion request is
// repeated every 150 ms: a startup process between two attempts to stream from the dead
// writer may otherwise notice it only after a 5 s wait (seen with PostgreSQL 15).
func promoteNow(ctx context.Context, r *instance.Instance) error {
	conn, err := r.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var asked time.Time
	for {
		var inRecovery bool
		if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil {
			return fmt.Errorf("instance %s: promote: %w", r.Name, err)
		}
		if !inRecovery {
			return nil
		}
		if time.Since(asked) >= 150*time.Millisecond {
			// An error here may only mean the promotion finished meanwhile; the next round
			// tells.
			if _, err := conn.Exec(ctx, "SELECT pg_promote(false)"); err != nil && conn.IsClosed() {
				return fmt.Errorf("instance %s: promote: %w", r.Name, err)
			}
			asked = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("instance %s: promotion did not finish: %w", r.Name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
