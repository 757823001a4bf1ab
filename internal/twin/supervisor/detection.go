// Detection: the health watch on the writer, and the verdict that it is dead, which starts an
// automatic failover (failover.go).

package supervisor

import (
	"context"
	"errors"
	"fmt"
	"time"

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
)

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
	if w.Suspended() {
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
