package supervisor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/instance"
	"github.com/jackc/pgx/v5"
)

// Failure detection. Every healthInterval the writer must answer a query on a session the
// supervisor keeps, within healthTimeout; its postmaster must not be stopped (SIGSTOP, seen in
// /proc); and every freshEvery, and after any failure, a new session must open (so a hung
// postmaster, which accepts no connection, is seen even while old sessions still answer). After
// healthFailures failed checks in a row, one last check on a new session decides: a writer that
// is slow but answers within the timeout is never failed over. A postmaster that exits is seen
// at once (instance.Done). A stopped postmaster is thus found in about healthFailures ×
// healthInterval + healthTimeout, any other hang in at most freshEvery + healthFailures ×
// (healthInterval + healthTimeout).
var (
	healthInterval = 300 * time.Millisecond
	healthTimeout  = time.Second
	healthFailures = 3
	// freshEvery is how often the check opens a new session while the writer answers on the one
	// it keeps: a postmaster that accepts no connection is found this way, for a few lines in the
	// server log (log_connections) every few seconds rather than at every check.
	freshEvery = 5 * time.Second
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

// watch checks the writer until ctx ends and fails it over when it dies or hangs.
func (s *Supervisor) watch(ctx context.Context) {
	tick := time.NewTicker(healthInterval)
	defer tick.Stop()
	failures := 0
	var backoff time.Duration
	probe := &healthProbe{}
	defer probe.reset()
	for {
		w := s.writerInstance()
		var died <-chan struct{}
		if w != nil {
			died = w.Done()
		}
		select {
		case <-ctx.Done():
			return
		case <-s.shutdown:
			return
		case <-died:
			failures = 0
			probe.reset()
			if !s.autoFailover(ctx, w, true, "its postmaster exited") {
				backoff = s.failoverBackoff(ctx, backoff)
			} else {
				backoff = 0
			}
		case <-tick.C:
			if w == nil || !w.Running() {
				continue
			}
			// No verdict while a failover, switchover or rejoin runs: a writer shutting down
			// for a switchover does not answer either.
			if !s.ha.op.TryLock() {
				failures = 0
				probe.reset() // its session may be cut by the operation
				continue
			}
			s.ha.op.Unlock()
			err := probe.check(ctx, w, failures > 0)
			if err == nil || ctx.Err() != nil {
				failures = 0
				continue
			}
			failures++
			s.log.Warn("writer health check failed", "instance", w.Name, "failures", failures, "err", err)
			if failures >= healthFailures {
				failures = 0
				if !s.autoFailover(ctx, w, false, fmt.Sprintf("it failed %d health checks in a row (last: %v) and did not answer a new session within %s", healthFailures, err, healthTimeout)) {
					backoff = s.failoverBackoff(ctx, backoff)
				} else {
					backoff = 0
				}
			}
		}
	}
}

// failoverBackoff waits after a failed failover before the next attempt, longer each time (at
// most 30 s), and returns the next wait.
func (s *Supervisor) failoverBackoff(ctx context.Context, last time.Duration) time.Duration {
	next := min(max(2*last, time.Second), 30*time.Second)
	select {
	case <-ctx.Done():
	case <-s.shutdown:
	case <-time.After(next):
	}
	return next
}

// healthProbe keeps the health check's session to the writer.
type healthProbe struct {
	inst  *instance.Instance
	conn  *pgx.Conn
	fresh time.Time // when conn was opened
}

func (p *healthProbe) reset() {
	if p.conn != nil {
		_ = p.conn.Close(context.Background())
	}
	p.conn = nil
}

// check asks w whether it serves as the writer: its postmaster must not be stopped, and it must
// answer within healthTimeout on the kept session, or on a new one when fresh is asked for or
// due.
func (p *healthProbe) check(ctx context.Context, w *instance.Instance, fresh bool) error {
	if p.inst != w {
		p.reset()
		p.inst = w
	}
	if processStopped(w.PID()) {
		return errors.New("its postmaster is stopped")
	}
	hctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	if p.conn == nil || fresh || time.Since(p.fresh) >= freshEvery {
		c, err := w.Connect(hctx, "postgres")
		if err != nil {
			return err
		}
		p.reset()
		p.conn, p.fresh = c, time.Now()
	}
	if err := askWriter(hctx, p.conn); err != nil {
		p.reset()
		return err
	}
	return nil
}

// processStopped reports whether a process is stopped by a signal (state T in /proc).
func processStopped(pid int) bool {
	if pid <= 0 {
		return false
	}
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && i+2 < len(stat) && (stat[i+2] == 'T' || stat[i+2] == 't')
}

func askWriter(ctx context.Context, conn *pgx.Conn) error {
	var inRecovery bool
	if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil {
		return fmt.Errorf("health query: %w", err)
	}
	if inRecovery {
		return errors.New("the writer is in recovery")
	}
	return nil
}

// healthCheck opens a new connection to the writer and asks it whether it is a writer.
func (s *Supervisor) healthCheck(ctx context.Context, w *instance.Instance) error {
	hctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	conn, err := w.Connect(hctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return askWriter(hctx, conn)
}

// autoFailover handles a writer that died or hangs (dead: its postmaster exited). It reports
// false when a failover was tried and failed.
func (s *Supervisor) autoFailover(ctx context.Context, w *instance.Instance, dead bool, reason string) bool {
	s.ha.op.Lock()
	defer s.ha.op.Unlock()
	// A switchover may have changed the writer, or restarted it, while this waited.
	if ctx.Err() != nil || s.writerInstance() != w || (dead && w.Running()) {
		return true
	}
	// A hung writer is asked once more: it may have been restarted, or have recovered.
	if !dead && s.healthCheck(ctx, w) == nil {
		return true
	}
	s.clusterEvent("failover", "failover started: writer %s failed: %s", w.Name, reason)
	res, err := s.failover(ctx, w, "", false)
	if err != nil {
		s.clusterEvent("failure", "failover of writer %s failed: %v", w.Name, err)
		return false
	}
	s.clusterEvent("failover", "failover completed: %s", describe(res))
	return true
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

// testHookBeforeRejoin lets tests stop the supervisor before an old writer rejoins.
var testHookBeforeRejoin func()

// rejoinLater brings the old writer back as a reader after an automatic failover, retrying.
func (s *Supervisor) rejoinLater(ctx context.Context, name string) {
	if testHookBeforeRejoin != nil {
		testHookBeforeRejoin()
	}
	for attempt := 1; ; attempt++ {
		s.ha.op.Lock()
		err := s.rejoin(ctx, name)
		s.ha.op.Unlock()
		if err == nil || ctx.Err() != nil {
			return
		}
		s.log.Error("rejoin as a reader", "instance", name, "attempt", attempt, "err", err)
		if attempt == 5 {
			s.mu.Lock()
			s.failed[name] = "rejoin as a reader failed: " + err.Error()
			s.mu.Unlock()
			s.instanceEvent(name, "failure", "instance %s could not rejoin as a reader: %v", name, err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(attempt) * time.Second):
		}
	}
}

// rejoin starts the instance name, the old writer, as a reader of the current writer: pg_rewind
// removes whatever it wrote that the new writer never received (checksums make that possible),
// or, when pg_rewind fails, a fresh base backup replaces its data. Called with s.ha.op held.
func (s *Supervisor) rejoin(ctx context.Context, name string) error {
	w := s.writerInstance()
	if w == nil || !w.Running() {
		return errors.New("no running writer to follow")
	}
	s.mu.Lock()
	var in InstanceState
	for _, x := range s.state.Instances {
		if x.Name == name {
			in = x
		}
	}
	old := s.instances[name]
	s.mu.Unlock()
	if in.Name == "" || in.Role != api.RoleReader {
		return fmt.Errorf("instance %s is not a reader", name)
	}
	if old != nil && old.Running() {
		return fmt.Errorf("instance %s still runs", name)
	}
	r := s.newInstance(in)
	how := "pg_rewind"
	if err := s.rewind(ctx, r, w); err != nil {
		if !rewindFailed(ctx, err) {
			return err
		}
		s.log.Warn("pg_rewind failed; taking a new base backup", "instance", name, "err", err)
		how = "a new base backup"
		if err := os.RemoveAll(r.DataDir()); err != nil {
			return fmt.Errorf("remove %s: %w", r.DataDir(), err)
		}
	} else if err := s.asStandby(r); err != nil {
		return err
	}
	cert, key, err := s.tlsPair()
	if err != nil {
		return err
	}
	if err := s.startReader(ctx, in, w, cert, key); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.failed, name)
	delete(s.ha.rejoining, name)
	s.mu.Unlock()
	if err := s.markRejoin(name, false); err != nil {
		s.log.Error("record the rejoin", "instance", name, "err", err)
	}
	s.updateReaderEndpoint()
	s.instanceEvent(name, "recovery", "instance %s rejoined as a reader of %s (%s)", name, w.Name, how)
	return nil
}

// rejoinFile lists the old writers that still have to rejoin as readers: a supervisor stopped
// (or dead) between a failover and the rejoin finds them there at its next start.
func (s *Supervisor) rejoinFile() string { return s.layout.RejoinFile() }

func (s *Supervisor) pendingRejoins() ([]string, error) {
	data, err := os.ReadFile(s.rejoinFile())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	if err := json.Unmarshal(data, &names); err != nil {
		return nil, fmt.Errorf("%s is damaged: %w", s.rejoinFile(), err)
	}
	return names, nil
}

// markRejoin adds name to (on) or removes it from the pending rejoins. Called with s.ha.op held,
// or during start.
func (s *Supervisor) markRejoin(name string, on bool) error {
	names, err := s.pendingRejoins()
	if err != nil {
		return err
	}
	names = slices.DeleteFunc(names, func(n string) bool { return n == name })
	if on {
		names = append(names, name)
	}
	if len(names) == 0 {
		if err := os.Remove(s.rejoinFile()); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	return writeJSONFile(s.rejoinFile(), names, 0o644)
}

// rejoinPending prepares, at start, the data of old writers that had not rejoined: pg_rewind
// against the writer w, or, when that fails, removal so that the reader is made afresh from a
// base backup. startReader then starts them as readers.
func (s *Supervisor) rejoinPending(ctx context.Context, w *instance.Instance) error {
	names, err := s.pendingRejoins()
	if err != nil || len(names) == 0 {
		return err
	}
	for _, name := range names {
		var in InstanceState
		for _, x := range s.state.Instances {
			if x.Name == name {
				in = x
			}
		}
		if in.Role != api.RoleReader {
			continue
		}
		r := s.newInstance(in)
		s.progress("instance %s was the writer before a failover: rewinding it to follow %s", name, w.Name)
		if err := s.rewind(ctx, r, w); err != nil {
			if !rewindFailed(ctx, err) {
				return err
			}
			s.log.Warn("pg_rewind failed; the reader is made afresh from a base backup", "instance", name, "err", err)
			if err := os.RemoveAll(r.DataDir()); err != nil {
				return fmt.Errorf("remove %s: %w", r.DataDir(), err)
			}
		} else if err := s.asStandby(r); err != nil {
			return err
		}
		if err := s.markRejoin(name, false); err != nil {
			return err
		}
		s.instanceEvent(name, "recovery", "instance %s rejoins as a reader of %s at start", name, w.Name)
	}
	return nil
}

func (s *Supervisor) tlsPair() ([]byte, []byte, error) {
	cert, err := os.ReadFile(filepath.Join(s.layout.TLSDir(), "server.crt"))
	if err != nil {
		return nil, nil, fmt.Errorf("server certificate: %w", err)
	}
	key, err := os.ReadFile(filepath.Join(s.layout.TLSDir(), "server.key"))
	if err != nil {
		return nil, nil, fmt.Errorf("server key: %w", err)
	}
	return cert, key, nil
}

// errRewind marks a failure of pg_rewind itself, as opposed to one of reaching the writer or a
// cancellation: only then is the old data given up for a new base backup.
var errRewind = errors.New("pg_rewind failed")

func rewindFailed(ctx context.Context, err error) bool {
	return ctx.Err() == nil && errors.Is(err, errRewind)
}

// rewind runs pg_rewind on r's data directory against the writer w. After a clean shutdown with
// nothing to undo it finds "no rewind required".
func (s *Supervisor) rewind(ctx context.Context, r, w *instance.Instance) error {
	if !r.Initialized() {
		return fmt.Errorf("%w: no data directory", errRewind)
	}
	// pg_rewind reads the source's timeline from pg_control, which a promotion updates only with
	// its next checkpoint.
	conn, err := w.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, "CHECKPOINT")
	conn.Close(context.Background())
	if err != nil {
		return fmt.Errorf("checkpoint on %s: %w", w.Name, err)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := s.acct.Command(rctx, s.bin.Path("pg_rewind"), "--target-pgdata="+r.DataDir(),
		fmt.Sprintf("--source-server=host=%s port=%d user=postgres dbname=postgres application_name=apgstack-rewind", w.SocketDir(), w.Port))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: %s from %s: %w: %s", errRewind, r.Name, w.Name, err, strings.TrimSpace(out.String()))
	}
	s.log.Info("pg_rewind", "instance", r.Name, "source", w.Name, "output", strings.TrimSpace(out.String()))
	return nil
}

// asStandby clears what a former writer's data directory must not keep as a reader: its
// replication slots (they would hold WAL back forever) and its ALTER SYSTEM settings
// (synchronous_standby_names is the writer's business).
func (s *Supervisor) asStandby(r *instance.Instance) error {
	slots, _ := filepath.Glob(filepath.Join(r.DataDir(), "pg_replslot", "*"))
	for _, sl := range slots {
		if err := os.RemoveAll(sl); err != nil {
			return fmt.Errorf("remove replication slot %s: %w", sl, err)
		}
	}
	return r.WriteFile("postgresql.auto.conf", nil)
}
