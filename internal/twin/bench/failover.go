package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/writeload"
)

// disruption is what happens to the writer during a run.
type disruption string

const (
	sigkill    disruption = "SIGKILL"
	sigstop    disruption = "SIGSTOP"
	switchover disruption = "switchover"
)

// outcome is one run's figures.
type outcome struct {
	recovery  time.Duration // disruption to the first acknowledged write begun after it
	stall     time.Duration // longest time without an acknowledged write around the disruption
	errors    int
	reconnect int
	acked     int
	lost      int
	firstErrs []string      // the first error of each outage the client saw, for diagnosis
	events    []string      // the supervisor's failover events after the disruption
	paused    time.Duration // switchover: how long the supervisor says the writer endpoint held connections
	timeline  Timeline      // the acknowledged writes around the disruption, for a chart
}

// opTimeout bounds one connect or transaction of the writing client: a hung server costs it at
// most this long before it reconnects.
const opTimeout = 5 * time.Second

// switchoverTo asks the supervisor for a planned switchover to the best reader.
func (tw *liveTwin) switchoverTo(ctx context.Context) (api.Failover, error) {
	return tw.client().Failover(ctx, "")
}

// disrupt runs the writing client on the prod twin, disrupts the writer, and measures.
func (r *runner) disrupt(ctx context.Context, tw *liveTwin, kind disruption, run int) (outcome, error) {
	var out outcome
	table := fmt.Sprintf("bench_%s_%d_%d", strings.ToLower(string(kind)), run, time.Now().UnixNano()%100000)
	cc, err := tw.connConfig(tw.cfg.Database.Port)
	if err != nil {
		return out, err
	}
	setup, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return out, err
	}
	err = writeload.Setup(ctx, setup, table)
	setup.Close(context.Background())
	if err != nil {
		return out, err
	}
	load, err := writeload.Start(ctx, writeload.Options{Config: cc, Table: table, OpTimeout: opTimeout})
	if err != nil {
		return out, err
	}
	defer load.Stop()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = load.WaitAcked(wctx, 20)
	cancel()
	if err != nil {
		return out, fmt.Errorf("the writing client does not get going: %w", err)
	}
	st, err := tw.status(ctx)
	if err != nil {
		return out, err
	}
	w, ok := writerOf(st)
	if !ok || w.PID == 0 {
		return out, fmt.Errorf("no running writer in the status: %+v", st.Instances)
	}

	stalls := watchStalls(load)
	outagesBefore := len(load.Stats().Outages)
	t0 := time.Now()
	switch kind {
	case sigkill:
		if err := syscall.Kill(w.PID, syscall.SIGKILL); err != nil {
			return out, fmt.Errorf("SIGKILL writer postmaster %d: %w", w.PID, err)
		}
	case sigstop:
		// Every process of the server hangs, as on a stuck machine: the postmaster first (so it
		// forks nothing more), then its children (each leads its own session, so a process
		// group signal would not reach them). SIGCONT afterwards, whatever the supervisor did.
		stopped := stopServer(w.PID)
		defer cont(stopped)
	case switchover:
		res, err := tw.switchoverTo(ctx)
		if errors.Is(err, errNotAvailable) {
			return out, err
		}
		if err != nil {
			return out, fmt.Errorf("switchover: %w", err)
		}
		out.paused = res.Paused
	}
	rctx, cancel := context.WithTimeout(ctx, r.s.recoverTimeout)
	var t1 time.Time
	if kind == switchover {
		// A perfect switchover shows the client no failure at all: the figure is the longest stall.
		t1, err = load.WaitAckAfter(rctx, time.Now())
	} else {
		// The end of the first outage the client saw after the signal. (A backend of a killed
		// postmaster may go on serving its connection for a moment: writes it acknowledges
		// there are not a recovery.)
		var o writeload.Outage
		o, err = load.WaitRecovered(rctx, outagesBefore+1)
		t1 = o.RecoveredAt
	}
	cancel()
	if err != nil {
		stalls.stop()
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		return out, r.noRecovery(ctx, tw, w, kind)
	}
	out.recovery = t1.Sub(t0)
	// A little more writing on whatever serves now, then the books are closed.
	n := load.Stats().Acked + 20
	wctx, cancel = context.WithTimeout(ctx, 10*time.Second)
	_ = load.WaitAcked(wctx, n)
	cancel()
	out.stall = stalls.stop()
	stats := load.Stop()
	out.timeline = newTimeline(kind, t0, load.AckTimes(), out.recovery)
	out.errors, out.reconnect, out.acked = stats.Errors, stats.Reconnects, stats.Acked
	for _, o := range stats.Outages {
		if !o.FailedAt.Before(t0) {
			out.firstErrs = append(out.firstErrs, fmt.Sprintf("+%s %s", FormatSeconds(o.FailedAt.Sub(t0).Seconds()), oneLine(o.FirstError)))
		}
	}
	// What the supervisor says it did (timings), to read beside the client's view.
	if evs, err := tw.client().Events(ctx); err == nil {
		for _, ev := range evs {
			if !ev.Time.Before(t0) && (ev.Category == "failover" || ev.Category == "failure") {
				out.events = append(out.events, fmt.Sprintf("+%s %s", FormatSeconds(ev.Time.Sub(t0).Seconds()), oneLine(ev.Message)))
			}
		}
	}
	lost, err := countLost(ctx, tw, table, load.Acked())
	if err != nil {
		return out, err
	}
	out.lost = lost
	return out, nil
}

// noRecovery explains writes that did not resume: a supervisor without failover leaves the dead
// writer as the writer, which is "not available", not a slow failover.
func (r *runner) noRecovery(ctx context.Context, tw *liveTwin, before api.Instance, kind disruption) error {
	st, err := tw.status(ctx)
	if err == nil {
		if w, ok := writerOf(st); ok && w.Name == before.Name && kind != switchover {
			return fmt.Errorf("%w: writes did not resume within %s and %s is still the writer (state %s): the supervisor did not fail over",
				errNotAvailable, r.s.recoverTimeout, w.Name, w.State)
		}
	}
	return fmt.Errorf("writes did not resume within %s after %s", r.s.recoverTimeout, kind)
}

// stopServer sends SIGSTOP to a postmaster and then to its children, and returns the pids stopped.
func stopServer(postmaster int) []int {
	if syscall.Kill(postmaster, syscall.SIGSTOP) != nil {
		return nil
	}
	stopped := []int{postmaster}
	for _, pid := range children(postmaster) {
		if syscall.Kill(pid, syscall.SIGSTOP) == nil {
			stopped = append(stopped, pid)
		}
	}
	return stopped
}

func cont(pids []int) {
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGCONT)
	}
}

// children lists the processes whose parent is pid (from /proc).
func children(pid int) []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, f := range stats {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if ppid, ok := parentPID(data); ok && ppid == pid {
			if p, err := strconv.Atoi(filepath.Base(filepath.Dir(f))); err == nil {
				out = append(out, p)
			}
		}
	}
	return out
}

// parentPID reads the ppid from a /proc/<pid>/stat line: "pid (comm) state ppid ...", where comm
// may hold spaces and parentheses.
func parentPID(stat []byte) (int, bool) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(fields[1])
	return ppid, err == nil
}

// countLost looks every acknowledged id up through the writer endpoint.
func countLost(ctx context.Context, tw *liveTwin, table string, acked []int64) (int, error) {
	var conn *pgx.Conn
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err = tw.connect(cctx, tw.cfg.Database.Port)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return 0, fmt.Errorf("connect to verify the acknowledged writes: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, "SELECT id FROM "+pgx.Identifier{table}.Sanitize())
	if err != nil {
		return 0, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, err
	}
	have := make(map[int64]bool, len(ids))
	for _, id := range ids {
		have[id] = true
	}
	lost := 0
	for _, id := range acked {
		if !have[id] {
			lost++
		}
	}
	return lost, nil
}

// stallWatch samples the acknowledged count and keeps the longest time it did not move.
type stallWatch struct {
	done    chan struct{}
	result  chan time.Duration
	once    sync.Once
	longest time.Duration
}

func watchStalls(load *writeload.Load) *stallWatch {
	w := &stallWatch{done: make(chan struct{}), result: make(chan time.Duration, 1)}
	go func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		last, since := load.Stats().Acked, time.Now()
		var longest time.Duration
		for {
			select {
			case <-w.done:
				w.result <- longest
				return
			case now := <-tick.C:
				if n := load.Stats().Acked; n != last {
					last = n
					longest = max(longest, now.Sub(since))
					since = now
				}
			}
		}
	}()
	return w
}

func (w *stallWatch) stop() time.Duration {
	w.once.Do(func() {
		close(w.done)
		w.longest = <-w.result
	})
	return w.longest
}

// failover measures SIGKILL and SIGSTOP of the writer on the prod twin.
func (r *runner) failover(ctx context.Context) error {
	for _, c := range []struct {
		kind disruption
		runs int
	}{{sigkill, r.s.killRuns}, {sigstop, r.s.stopRuns}} {
		outs, err := r.disruptRuns(ctx, c.kind, c.runs)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.add(failoverRows(c.kind, c.runs, outs, err)...)
		if c.kind == sigkill {
			r.addTimeline(outs)
		}
	}
	return nil
}

// switchover measures planned switchovers on the prod twin.
func (r *runner) switchover(ctx context.Context) error {
	outs, err := r.disruptRuns(ctx, switchover, r.s.switchRuns)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	r.add(switchoverRows(r.s.switchRuns, outs, err)...)
	r.addTimeline(outs)
	return nil
}

// disruptRuns runs a kind of disruption runs times, each on a whole twin. It stops at the first
// run that fails and returns what was measured, with the failure.
func (r *runner) disruptRuns(ctx context.Context, kind disruption, runs int) ([]outcome, error) {
	var outs []outcome
	for run := 1; run <= runs; run++ {
		tw, err := r.prodTwin(ctx)
		if err != nil {
			return outs, err
		}
		o, err := r.disrupt(ctx, tw, kind, run)
		if err != nil {
			// Whatever state the twin is in, the next scenario starts on a new one.
			r.closeProd()
			return outs, err
		}
		r.progress("%s run %d/%d: writes back after %s, longest stall %s, %d errors, %d reconnects, %d of %d acknowledged writes lost",
			kind, run, runs, FormatSeconds(o.recovery.Seconds()), FormatSeconds(o.stall.Seconds()), o.errors, o.reconnect, o.lost, o.acked)
		for _, e := range o.firstErrs {
			r.progress("  client outage: %s", e)
		}
		for _, e := range o.events {
			r.progress("  supervisor: %s", e)
		}
		outs = append(outs, o)
	}
	return outs, nil
}

func lostRow(scenario, measure string, outs []outcome) Row {
	lost, acked := 0, 0
	for _, o := range outs {
		lost += o.lost
		acked += o.acked
	}
	return Row{Scenario: scenario, Measure: measure, Result: fmt.Sprintf("%d of %d", lost, acked), Target: "0 in every run",
		Verdict: verdict(lost == 0), Note: fmt.Sprintf("%d runs, prod (synchronous replication)", len(outs))}
}

func runsNote(outs []outcome, runs int, err error) string {
	note := fmt.Sprintf("%d runs", len(outs))
	if err != nil {
		note = fmt.Sprintf("%d of %d runs; then: %s", len(outs), runs, oneLine(err.Error()))
	}
	return note
}

func failoverRows(kind disruption, runs int, outs []outcome, err error) []Row {
	scenario := "failover"
	if len(outs) == 0 {
		return []Row{{Scenario: scenario, Measure: string(kind) + " of the writer to first acknowledged write", Result: "not measured", Verdict: failedVerdict(err), Note: errNote(err)}}
	}
	var rec []float64
	errs, recs := 0, 0
	for _, o := range outs {
		rec = append(rec, o.recovery.Seconds())
		errs, recs = max(errs, o.errors), max(recs, o.reconnect)
	}
	s := Summarize(rec)
	note := runsNote(outs, runs, err) + fmt.Sprintf("; per run at most %d errors, %d reconnects", errs, recs)
	var rows []Row
	switch kind {
	case sigkill:
		rows = append(rows,
			Row{Scenario: scenario, Measure: "SIGKILL of the writer's postmaster to first acknowledged write, median", Result: FormatSeconds(s.Median), Spread: SpreadSeconds(s),
				Target: "< 2 s", Verdict: verdict(s.Median < 2), Note: note},
			Row{Scenario: scenario, Measure: "SIGKILL of the writer's postmaster to first acknowledged write, worst", Result: FormatSeconds(s.Max),
				Target: "< 5 s", Verdict: verdict(s.Max < 5), Note: fmt.Sprintf("%d runs", s.N)},
			lostRow(scenario, "acknowledged writes lost (SIGKILL)", outs))
	case sigstop:
		rows = append(rows,
			Row{Scenario: scenario, Measure: "SIGSTOP of the writer (hung) to first acknowledged write, median", Result: FormatSeconds(s.Median), Spread: SpreadSeconds(s),
				Target: "< 6 s", Verdict: verdict(s.Median < 6), Note: note},
			lostRow(scenario, "acknowledged writes lost (SIGSTOP)", outs))
	}
	if err != nil && len(outs) < runs {
		for i := range rows {
			if rows[i].Verdict == Met {
				// Not every run happened: a target cannot be called met on part of the runs.
				rows[i].Verdict = Missed
			}
		}
	}
	return rows
}

func switchoverRows(runs int, outs []outcome, err error) []Row {
	scenario := "switchover"
	if len(outs) == 0 {
		return []Row{{Scenario: scenario, Measure: "planned switchover: write unavailability", Result: "not measured", Verdict: failedVerdict(err), Note: errNote(err)}}
	}
	var stall, paused []float64
	beyond, errs, recs := 0, 0, 0
	for _, o := range outs {
		stall = append(stall, o.stall.Seconds())
		paused = append(paused, o.paused.Seconds())
		errs, recs = max(errs, o.errors), max(recs, o.reconnect)
		// One broken connection and its reconnect are allowed; anything more is an error beyond.
		beyond = max(beyond, max(0, o.errors-1)+max(0, o.reconnect-1))
	}
	s := Summarize(stall)
	rows := []Row{
		{Scenario: scenario, Measure: "planned switchover: write unavailability (longest time without an acknowledged write)", Result: FormatSeconds(s.Median), Spread: SpreadSeconds(s),
			Target: "< 1 s (every run)", Verdict: verdict(s.Max < 1), Note: runsNote(outs, runs, err) + "; verdict on the worst run; the supervisor reports the writer endpoint paused " + FormatSeconds(Summarize(paused).Median) + " (median)"},
		{Scenario: scenario, Measure: "errors beyond one reconnect", Result: fmt.Sprint(beyond), Target: "0",
			Verdict: verdict(beyond == 0), Note: fmt.Sprintf("per run at most %d errors, %d reconnects", errs, recs)},
		lostRow(scenario, "acknowledged writes lost (switchover)", outs),
	}
	if err != nil && len(outs) < runs {
		for i := range rows {
			if rows[i].Verdict == Met {
				rows[i].Verdict = Missed
			}
		}
	}
	return rows
}

func errNote(err error) string {
	if err == nil {
		return ""
	}
	return oneLine(strings.TrimPrefix(err.Error(), errNotAvailable.Error()+": "))
}

// failedVerdict: a scenario this build cannot run is not available; one that ran and failed
// (writes never resumed) missed its target.
func failedVerdict(err error) Verdict {
	if err == nil || errors.Is(err, errNotAvailable) {
		return NotAvailable
	}
	return Missed
}
