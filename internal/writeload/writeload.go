// Package writeload is a writing client for failover tests and benchmarks: one session inserts
// sequential ids into a table through an address (the writer endpoint), records an id as
// acknowledged only after its COMMIT returned, and on any error drops the connection and
// reconnects after a short backoff. Verify then checks that every acknowledged id is present,
// which is what "no acknowledged write lost" means.
package writeload

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Options configure a load.
type Options struct {
	// Config is where and how to connect (the writer endpoint, TLS, credentials); copied for each
	// connection.
	Config *pgx.ConnConfig
	// Table receives the ids; Setup creates it.
	Table string
	// Backoff is the pause before reconnecting after an error (default 20 ms).
	Backoff time.Duration
	// OpTimeout bounds one connect or one transaction (default 5 s): a hung server costs at most
	// this long before the client reconnects.
	OpTimeout time.Duration
	// Interval paces the writes (default 0: one after the other, as fast as the server commits).
	Interval time.Duration
}

// Outage is a run of failed attempts: from the first failure to the first acknowledged write
// after it (zero while it lasts).
type Outage struct {
	FailedAt    time.Time `json:"failedAt"`
	RecoveredAt time.Time `json:"recoveredAt"`
	FirstError  string    `json:"firstError"`
}

// Duration is how long the outage lasted (0 while it lasts).
func (o Outage) Duration() time.Duration {
	if o.RecoveredAt.IsZero() {
		return 0
	}
	return o.RecoveredAt.Sub(o.FailedAt)
}

// Stats count what happened.
type Stats struct {
	Acked      int `json:"acked"`
	InDoubt    int `json:"inDoubt"` // attempts whose COMMIT gave no answer: present or not, either is right
	Errors     int `json:"errors"`
	Reconnects int `json:"reconnects"`
	// FirstFailure and FirstSuccessAfter are the first outage's bounds.
	FirstFailure      time.Time `json:"firstFailure"`
	FirstSuccessAfter time.Time `json:"firstSuccessAfter"`
	Outages           []Outage  `json:"outages"`
	// ErrorLog holds the first errors with their times (at most 50), for diagnosis.
	ErrorLog []string `json:"errorLog"`
}

// Load is a running writing client.
type Load struct {
	opts   Options
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	cond    *sync.Cond
	acked   []int64
	started []time.Time // when each acknowledged id's transaction began
	ackedAt []time.Time
	inDoubt []int64
	stats   Stats
}

// Setup creates the load's table if it does not exist. Each row records when and on which server
// (its internal port) it was written, so that tests can check that two servers never took writes
// at the same time.
func Setup(ctx context.Context, conn *pgx.Conn, table string) error {
	_, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+pgx.Identifier{table}.Sanitize()+
		" (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp(), server_port int DEFAULT inet_server_port())")
	if err != nil {
		return fmt.Errorf("writeload: create table %s: %w", table, err)
	}
	return nil
}

// Start begins writing in the background; Stop ends it.
func Start(ctx context.Context, opts Options) (*Load, error) {
	if opts.Config == nil || opts.Table == "" {
		return nil, errors.New("writeload: a connection configuration and a table are needed")
	}
	if opts.Backoff == 0 {
		opts.Backoff = 20 * time.Millisecond
	}
	if opts.OpTimeout == 0 {
		opts.OpTimeout = 5 * time.Second
	}
	ctx, cancel := context.WithCancel(ctx)
	l := &Load{opts: opts, cancel: cancel, done: make(chan struct{})}
	l.cond = sync.NewCond(&l.mu)
	go l.run(ctx)
	return l, nil
}

func (l *Load) run(ctx context.Context) {
	defer close(l.done)
	defer func() {
		l.mu.Lock()
		l.cond.Broadcast()
		l.mu.Unlock()
	}()
	table := pgx.Identifier{l.opts.Table}.Sanitize()
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			_ = conn.Close(context.Background())
		}
	}()
	next := int64(1)
	connected := false
	for ctx.Err() == nil {
		if conn == nil {
			cctx, cancel := context.WithTimeout(ctx, l.opts.OpTimeout)
			c, err := pgx.ConnectConfig(cctx, l.opts.Config.Copy())
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				l.failed(err)
				sleep(ctx, l.opts.Backoff)
				continue
			}
			conn = c
			l.mu.Lock()
			if connected {
				l.stats.Reconnects++
			}
			connected = true
			l.mu.Unlock()
		}
		id := next
		next++
		began := time.Now()
		err := l.insert(ctx, conn, table, id)
		if err != nil {
			if ctx.Err() != nil {
				// Stopped mid-transaction: the id is in doubt, not failed.
				l.doubt(id)
				return
			}
			l.doubt(id)
			l.failed(err)
			_ = conn.Close(context.Background())
			conn = nil
			sleep(ctx, l.opts.Backoff)
			continue
		}
		l.ack(id, began)
		if l.opts.Interval > 0 {
			sleep(ctx, l.opts.Interval)
		}
	}
}

// insert writes one id in its own transaction; nil means COMMIT returned successfully.
func (l *Load) insert(ctx context.Context, conn *pgx.Conn, table string, id int64) error {
	tctx, cancel := context.WithTimeout(ctx, l.opts.OpTimeout)
	defer cancel()
	tx, err := conn.Begin(tctx)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(tctx, "INSERT INTO "+table+" (id) VALUES ($1)", id); err != nil {
		_ = tx.Rollback(context.Background())
		return err
	}
	return tx.Commit(tctx)
}

func (l *Load) ack(id int64, began time.Time) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.acked = append(l.acked, id)
	l.started = append(l.started, began)
	l.ackedAt = append(l.ackedAt, now)
	l.stats.Acked++
	if n := len(l.stats.Outages); n > 0 && l.stats.Outages[n-1].RecoveredAt.IsZero() {
		l.stats.Outages[n-1].RecoveredAt = now
		if n == 1 {
			l.stats.FirstSuccessAfter = now
		}
	}
	l.cond.Broadcast()
}

func (l *Load) doubt(id int64) {
	l.mu.Lock()
	l.inDoubt = append(l.inDoubt, id)
	l.stats.InDoubt++
	l.mu.Unlock()
}

func (l *Load) failed(err error) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stats.Errors++
	if len(l.stats.ErrorLog) < 50 {
		l.stats.ErrorLog = append(l.stats.ErrorLog, now.Format("15:04:05.000000")+" "+err.Error())
	}
	if n := len(l.stats.Outages); n == 0 || !l.stats.Outages[n-1].RecoveredAt.IsZero() {
		l.stats.Outages = append(l.stats.Outages, Outage{FailedAt: now, FirstError: err.Error()})
		if n == 0 {
			l.stats.FirstFailure = now
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Stop ends the load and waits for its last transaction; it returns the final counts.
func (l *Load) Stop() Stats {
	l.cancel()
	<-l.done
	return l.Stats()
}

// Stats returns the counts so far.
func (l *Load) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.stats
	st.Outages = slices.Clone(st.Outages)
	st.ErrorLog = slices.Clone(st.ErrorLog)
	return st
}

// Acked returns the acknowledged ids, in order.
// AckTimes returns when each acknowledged write was acknowledged, in order.
func (l *Load) AckTimes() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ackedAt)
}

func (l *Load) Acked() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.acked)
}

// WaitAcked waits until n writes are acknowledged in total.
func (l *Load) WaitAcked(ctx context.Context, n int) error {
	_, err := l.wait(ctx, func() (time.Time, bool) {
		if len(l.acked) >= n {
			return l.ackedAt[n-1], true
		}
		return time.Time{}, false
	})
	return err
}

// WaitAckAfter waits for an acknowledged write whose transaction began at or after t (a write on
// whatever serves after t) and returns when it was acknowledged.
func (l *Load) WaitAckAfter(ctx context.Context, t time.Time) (time.Time, error) {
	return l.wait(ctx, func() (time.Time, bool) {
		for i := len(l.started) - 1; i >= 0 && !l.started[i].Before(t); i-- {
			if i == 0 || l.started[i-1].Before(t) {
				return l.ackedAt[i], true
			}
		}
		return time.Time{}, false
	})
}

// WaitRecovered waits until n outages have ended with an acknowledged write and returns the
// n-th.
func (l *Load) WaitRecovered(ctx context.Context, n int) (Outage, error) {
	var out Outage
	_, err := l.wait(ctx, func() (time.Time, bool) {
		if len(l.stats.Outages) >= n && !l.stats.Outages[n-1].RecoveredAt.IsZero() {
			out = l.stats.Outages[n-1]
			return out.RecoveredAt, true
		}
		return time.Time{}, false
	})
	return out, err
}

// wait blocks until cond holds (checked under the lock), ctx ends or the load stops.
func (l *Load) wait(ctx context.Context, cond func() (time.Time, bool)) (time.Time, error) {
	stop := context.AfterFunc(ctx, func() {
		l.mu.Lock()
		l.cond.Broadcast()
		l.mu.Unlock()
	})
	defer stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		if at, ok := cond(); ok {
			return at, nil
		}
		if err := ctx.Err(); err != nil {
			return time.Time{}, fmt.Errorf("writeload: %d acknowledged, %d errors, last outage %+v: %w", len(l.acked), l.stats.Errors, l.lastOutage(), err)
		}
		select {
		case <-l.done:
			return time.Time{}, errors.New("writeload: stopped")
		default:
		}
		l.cond.Wait()
	}
}

func (l *Load) lastOutage() Outage {
	if n := len(l.stats.Outages); n > 0 {
		return l.stats.Outages[n-1]
	}
	return Outage{}
}

// Verify checks through conn that every acknowledged id is in the table, and that nothing is
// there that was never attempted. In-doubt ids may be either present or absent.
func (l *Load) Verify(ctx context.Context, conn *pgx.Conn) error {
	acked := l.Acked()
	l.mu.Lock()
	doubt := slices.Clone(l.inDoubt)
	l.mu.Unlock()
	rows, err := conn.Query(ctx, "SELECT id FROM "+pgx.Identifier{l.opts.Table}.Sanitize()+" ORDER BY id")
	if err != nil {
		return fmt.Errorf("writeload: read %s: %w", l.opts.Table, err)
	}
	present, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("writeload: read %s: %w", l.opts.Table, err)
	}
	have := make(map[int64]bool, len(present))
	for _, id := range present {
		have[id] = true
	}
	var missing []int64
	for _, id := range acked {
		if !have[id] {
			missing = append(missing, id)
		}
	}
	known := make(map[int64]bool, len(acked)+len(doubt))
	for _, id := range acked {
		known[id] = true
	}
	for _, id := range doubt {
		known[id] = true
	}
	var stray []int64
	for _, id := range present {
		if !known[id] {
			stray = append(stray, id)
		}
	}
	var errs []error
	if len(missing) > 0 {
		errs = append(errs, fmt.Errorf("writeload: %d of %d acknowledged ids are missing: %v", len(missing), len(acked), head(missing)))
	}
	if len(stray) > 0 {
		errs = append(errs, fmt.Errorf("writeload: %d ids present that were never attempted: %v", len(stray), head(stray)))
	}
	return errors.Join(errs...)
}

func head(ids []int64) []int64 {
	if len(ids) > 20 {
		return ids[:20]
	}
	return ids
}
