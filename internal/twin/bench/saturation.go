package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// The saturation scenario loads the prod twin's writer as hard as a busy production database is
// loaded (a connection flood, full CPU, a checkpoint storm, an autovacuum of a large table) and counts the
// failovers the supervisor performs meanwhile: a loaded but healthy writer must never be failed
// over, so the target is 0.

// saturationPhase is one kind of load.
type saturationPhase struct {
	name string
	run  func(ctx context.Context, tw *liveTwin, base target, d time.Duration) (string, error)
}

// phaseLength is how long each phase loads the writer (Options.SaturationPhase overrides it).
func (r *runner) phaseLength() time.Duration {
	switch {
	case r.o.SaturationPhase > 0:
		return r.o.SaturationPhase
	case r.o.Quick:
		return 8 * time.Second
	}
	return 45 * time.Second
}

// saturation runs the four phases in turn on the prod twin, each watched for failovers.
func (r *runner) saturation(ctx context.Context) error {
	tw, err := r.prodTwin(ctx)
	if err != nil {
		return err
	}
	st, err := tw.status(ctx)
	if err != nil {
		return err
	}
	base := target{user: tw.secret.Username, password: tw.secret.Password, db: tw.secret.DBName, ca: st.Outputs.CABundle, port: tw.cfg.Database.Port}
	r.progress("saturation: pgbench -i -s %d through the writer endpoint", r.s.scale)
	if _, err := r.pgbench(ctx, base, "-i", "-q", "-s", strconv.Itoa(r.s.scale)); err != nil {
		return err
	}
	phases := []saturationPhase{
		{"connection flood", r.connectionFlood},
		{"pgbench at full CPU", r.cpuSaturation},
		{"checkpoint storm", r.checkpointStorm},
		{"autovacuum of a large table", r.bigVacuum},
	}
	d := r.phaseLength()
	for _, p := range phases {
		r.progress("saturation: %s for %s", p.name, d)
		w := watchFailovers(ctx, tw)
		note, err := p.run(ctx, tw, base, d)
		f := w.stop(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.progress("saturation: %s: %s; %d failovers, %d writer changes", p.name, note, len(f.events), f.writerChanges)
		if f.instErr != "" {
			r.progress("  instance error seen: %s", f.instErr)
		}
		for _, e := range f.events {
			r.progress("  supervisor: %s", e)
		}
		r.add(saturationRow(p.name, note, f, err))
		// The next phase starts on a whole twin (a failover would have left it rejoining).
		if err := tw.waitWhole(ctx, r.s.wholeTimeout); err != nil {
			return err
		}
	}
	return nil
}

// failoverWatch polls the supervisor during a phase: the writer's name every 500 ms, and at the
// end its failover events since the start.
type failoverWatch struct {
	tw      *liveTwin
	start   time.Time
	cancel  context.CancelFunc
	done    chan struct{}
	changes int
	pollErr string
	instErr string // the last error the status gave for an instance (the failed health check)
}

// failovers is what a watch saw.
type failovers struct {
	events        []string // failover events (category failover) of the supervisor
	writerChanges int      // times the status named another writer
	pollErr       string   // the last status error, if the supervisor did not answer
	instErr       string   // the last instance error the status showed
}

func (f failovers) count() int { return max(len(f.events), f.writerChanges) }

func watchFailovers(ctx context.Context, tw *liveTwin) *failoverWatch {
	wctx, cancel := context.WithCancel(ctx)
	w := &failoverWatch{tw: tw, start: time.Now(), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		last := ""
		for {
			st, err := tw.status(wctx)
			if err != nil && wctx.Err() == nil {
				w.pollErr = err.Error()
			} else if in, ok := writerOf(st); ok {
				if last != "" && in.Name != last {
					w.changes++
				}
				last = in.Name
			}
			for _, in := range st.Instances {
				if in.Error != "" {
					w.instErr = in.Name + ": " + in.Error
				}
			}
			select {
			case <-wctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	return w
}

func (w *failoverWatch) stop(ctx context.Context) failovers {
	w.cancel()
	<-w.done
	f := failovers{writerChanges: w.changes, pollErr: w.pollErr, instErr: w.instErr}
	if evs, err := w.tw.client().Events(ctx); err == nil {
		for _, ev := range evs {
			if !ev.Time.Before(w.start) && ev.Category == "failover" {
				f.events = append(f.events, ev.Time.UTC().Format(time.TimeOnly)+" "+ev.SourceID+": "+ev.Message)
			}
		}
	}
	return f
}

// saturationRow is the failover count of one phase.
func saturationRow(phase, note string, f failovers, err error) Row {
	row := Row{Scenario: "saturation", Measure: "false failovers: " + phase, Result: strconv.Itoa(f.count()), Target: "0",
		Verdict: verdict(f.count() == 0), Note: note}
	if len(f.events) > 0 {
		row.Note += "; " + f.events[0]
	}
	if f.instErr != "" {
		row.Note += "; instance error: " + f.instErr
	}
	if f.pollErr != "" {
		row.Note += "; status: " + f.pollErr
	}
	if err != nil {
		// The load itself broke off: the count covers only part of the phase.
		row.Note += "; load: " + errNote(err)
		if f.count() == 0 {
			row.Verdict = Failed
		}
	}
	row.Note = oneLine(row.Note)
	return row
}

// connectionFlood opens master-user connections through the writer endpoint until
// max_connections and ten more, holds them for d, and says how many the server refused.
func (r *runner) connectionFlood(ctx context.Context, tw *liveTwin, _ target, d time.Duration) (string, error) {
	conn, err := tw.connect(ctx, tw.cfg.Database.Port)
	if err != nil {
		return "", err
	}
	var maxConns int
	err = conn.QueryRow(ctx, "SELECT current_setting('max_connections')::int").Scan(&maxConns)
	conn.Close(context.Background())
	if err != nil {
		return "", err
	}
	var held []*pgx.Conn
	defer func() {
		for _, c := range held {
			c.Close(context.Background())
		}
	}()
	refused, lastErr := 0, ""
	for i := 0; i < maxConns+10; i++ {
		cctx, cancel := context.WithTimeout(ctx, opTimeout)
		c, err := tw.connect(cctx, tw.cfg.Database.Port)
		cancel()
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if err != nil {
			refused++
			lastErr = err.Error()
			continue
		}
		held = append(held, c)
	}
	note := fmt.Sprintf("%d of %d connections opened (max_connections %d), held %s", len(held), maxConns+10, maxConns, d.Round(time.Second))
	if refused > 0 {
		note += fmt.Sprintf("; %d refused: %s", refused, lastErr)
	}
	return note, sleepCtx(ctx, d)
}

// cpuSaturation runs TPC-B-like pgbench with four clients per core for d.
func (r *runner) cpuSaturation(ctx context.Context, _ *liveTwin, base target, d time.Duration) (string, error) {
	clients := 4 * r.s.threads
	out, err := r.pgbench(ctx, base, "-n", "-c", strconv.Itoa(clients), "-j", strconv.Itoa(r.s.threads), "-T", seconds(d))
	if err != nil {
		return "", err
	}
	res, err := parsePgbench(out)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d clients on %d cores, %.0f tps", clients, r.s.threads, res.TPS), nil
}

// checkpointStorm runs write pgbench for d while another session asks for a CHECKPOINT every
// second (the master user holds pg_checkpointer, as rds_superuser; ALTER SYSTEM is not its to use).
func (r *runner) checkpointStorm(ctx context.Context, tw *liveTwin, base target, d time.Duration) (string, error) {
	conn, err := tw.connect(ctx, tw.cfg.Database.Port)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	checkpoints, cpErr := 0, error(nil)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for cctx.Err() == nil {
			if _, err := conn.Exec(cctx, "CHECKPOINT"); err != nil {
				if cctx.Err() == nil {
					cpErr = err
				}
				return
			}
			checkpoints++
			select {
			case <-cctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	out, err := r.pgbench(ctx, base, "-n", "-c", strconv.Itoa(r.s.clients), "-j", strconv.Itoa(r.s.threads), "-T", seconds(d))
	cancel()
	wg.Wait()
	if err == nil && cpErr != nil {
		err = fmt.Errorf("CHECKPOINT: %w", cpErr)
	}
	if err != nil {
		return fmt.Sprintf("%d checkpoints", checkpoints), err
	}
	res, err := parsePgbench(out)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d checkpoints under TPC-B-like pgbench, %.0f tps", checkpoints, res.TPS), nil
}

// bigVacuum creates a table of some hundred MB (less with --quick) with autovacuum off, updates
// every row (half of it becomes dead tuples), then turns autovacuum on for it with a threshold it
// is far past, and waits, under select-only pgbench for d, until an autovacuum worker has
// vacuumed it: autovacuum, not a VACUUM of the client's, as a production table bloats and is
// cleaned. Storage parameters are the table owner's to set, so the master user needs no
// ALTER SYSTEM. The worker starts within autovacuum_naptime; the wait is bounded, and pgbench
// goes on until the worker is done (at least d).
func (r *runner) bigVacuum(ctx context.Context, tw *liveTwin, base target, d time.Duration) (string, error) {
	rows := 1_200_000 // about 300 MB of 250-byte rows
	if r.o.Quick {
		rows = 150_000
	}
	conn, err := tw.connect(ctx, tw.cfg.Database.Port)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	for _, q := range []string{
		"DROP TABLE IF EXISTS bench_bloat",
		"CREATE TABLE bench_bloat (id int PRIMARY KEY, pad text) WITH (autovacuum_enabled = off)",
		fmt.Sprintf("INSERT INTO bench_bloat SELECT g, repeat('x', 200) FROM generate_series(1, %d) g", rows),
		"UPDATE bench_bloat SET pad = repeat('y', 200)",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return "", fmt.Errorf("%s: %w", q, err)
		}
	}
	var size string
	if err := conn.QueryRow(ctx, "SELECT pg_size_pretty(pg_total_relation_size('bench_bloat'))").Scan(&size); err != nil {
		return "", err
	}
	bound := max(d, 3*time.Minute)
	vctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var benchErr error
	wg.Add(1)
	began := time.Now()
	go func() {
		defer wg.Done()
		_, benchErr = r.pgbench(vctx, base, "-n", "-S", "-c", strconv.Itoa(r.s.clients), "-j", strconv.Itoa(r.s.threads), "-T", seconds(bound+d))
		if vctx.Err() != nil {
			benchErr = nil // ended by us, once the worker was done
		}
	}()
	_, err = conn.Exec(ctx, "ALTER TABLE bench_bloat SET (autovacuum_enabled = on, autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_scale_factor = 0, autovacuum_analyze_threshold = 1000, autovacuum_analyze_scale_factor = 0)")
	var took time.Duration
	if err == nil {
		took, err = waitAutovacuum(ctx, conn, bound)
	}
	_ = sleepCtx(ctx, d-time.Since(began))
	cancel()
	wg.Wait()
	_, _ = conn.Exec(ctx, "DROP TABLE IF EXISTS bench_bloat")
	if err == nil {
		err = benchErr
	}
	return fmt.Sprintf("%d rows, %s with half dead; autovacuum vacuumed it %s after it was enabled, under select-only pgbench", rows, size, FormatSeconds(took.Seconds())), err
}

// waitAutovacuum waits, at most bound, until an autovacuum worker has vacuumed bench_bloat, and
// returns how long that was.
func waitAutovacuum(ctx context.Context, conn *pgx.Conn, bound time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		var n int64
		if err := conn.QueryRow(ctx, "SELECT autovacuum_count FROM pg_stat_user_tables WHERE relid = 'bench_bloat'::regclass").Scan(&n); err != nil {
			return 0, fmt.Errorf("autovacuum of bench_bloat: %w", err)
		}
		if n > 0 {
			return time.Since(start), nil
		}
		if time.Since(start) > bound {
			return 0, fmt.Errorf("autovacuum did not vacuum bench_bloat within %s", bound)
		}
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			return 0, err
		}
	}
}

func seconds(d time.Duration) string { return strconv.Itoa(max(1, int(d.Seconds()))) }

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
