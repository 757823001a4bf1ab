package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apgstack/apgstack"
)

// ready measures time to ready, dev and prod, each run interleaved with its floor.
func (r *runner) ready(ctx context.Context) error {
	var devUp, devFloor, prodUp, prodFloor []float64
	for run := 1; run <= r.s.readyRuns; run++ {
		d, err := r.upOnce(ctx, apgstack.StageDev, fmt.Sprintf("d%d", run))
		if err != nil {
			return err
		}
		f, _, err := r.floor(ctx, fmt.Sprintf("fd%d", run), false)
		if err != nil {
			return fmt.Errorf("floor: %w", err)
		}
		p, err := r.upOnce(ctx, apgstack.StageProd, fmt.Sprintf("p%d", run))
		if err != nil {
			return err
		}
		_, pf, err := r.floor(ctx, fmt.Sprintf("fp%d", run), true)
		if err != nil {
			return fmt.Errorf("floor: %w", err)
		}
		r.progress("ready run %d/%d: dev up %s (floor %s), prod up %s (floor %s)", run, r.s.readyRuns,
			FormatSeconds(d.Seconds()), FormatSeconds(f.Seconds()), FormatSeconds(p.Seconds()), FormatSeconds(pf.Seconds()))
		devUp, devFloor = append(devUp, d.Seconds()), append(devFloor, f.Seconds())
		prodUp, prodFloor = append(prodUp, p.Seconds()), append(prodFloor, pf.Seconds())
	}
	r.add(readyRows(devUp, devFloor, prodUp, prodFloor)...)
	return nil
}

// readyRows turns the paired samples into the table's rows.
func readyRows(devUp, devFloor, prodUp, prodFloor []float64) []Row {
	du, df, pu, pf := Summarize(devUp), Summarize(devFloor), Summarize(prodUp), Summarize(prodFloor)
	diff := Summarize(Diffs(devUp, devFloor))
	ratio := Summarize(Ratios(prodUp, prodFloor))
	n := fmt.Sprintf("%d runs", du.N)
	return []Row{
		{Scenario: "time to ready", Measure: "dev floor: initdb + pg_ctl start, first query", Result: FormatSeconds(df.Median), Spread: SpreadSeconds(df), Verdict: Info, Note: n},
		{Scenario: "time to ready", Measure: "dev: up to first TLS query (writer endpoint, verify-full)", Result: FormatSeconds(du.Median), Spread: SpreadSeconds(du),
			Target: "≤ floor + 1 s", Verdict: verdict(diff.Median <= 1.0),
			Note: fmt.Sprintf("up − floor: median %s (%s)", signed(diff.Median), SpreadSeconds(diff))},
		{Scenario: "time to ready", Measure: "prod floor: dev floor + pg_basebackup + reader start", Result: FormatSeconds(pf.Median), Spread: SpreadSeconds(pf), Verdict: Info, Note: n},
		{Scenario: "time to ready", Measure: "prod: up to first TLS query (writer + sync reader + bootstrap)", Result: FormatSeconds(pu.Median), Spread: SpreadSeconds(pu),
			Target: "≤ 1.5× floor", Verdict: verdict(ratio.Median <= 1.5),
			Note: fmt.Sprintf("up ÷ floor: median %.2f× (%s)", ratio.Median, SpreadRatio(ratio))},
	}
}

func signed(s float64) string {
	if s >= 0 {
		return "+" + FormatSeconds(s)
	}
	return "−" + FormatSeconds(-s)
}

// upOnce brings a new twin up, takes its time to ready, and takes it down again.
func (r *runner) upOnce(ctx context.Context, stage, name string) (time.Duration, error) {
	tw, err := r.upTwin(ctx, stage, name)
	if tw != nil {
		defer tw.close()
	}
	if err != nil {
		return 0, err
	}
	return tw.ready, nil
}

// floor is the same PostgreSQL with nothing of apgstack: initdb and pg_ctl start of a writer to
// its first query; with a reader, then pg_basebackup -R and pg_ctl start of the reader to its
// first query. It returns the writer's time and the total.
func (r *runner) floor(ctx context.Context, name string, withReader bool) (time.Duration, time.Duration, error) {
	dir := filepath.Join(r.work, name)
	r.defer_(func() { _ = os.RemoveAll(dir) })
	if err := r.acct.MkdirAll(dir, 0o700); err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	ports, err := freePorts(2)
	if err != nil {
		return 0, 0, err
	}
	wdata, rdata := filepath.Join(dir, "w"), filepath.Join(dir, "r")
	for _, d := range []string{wdata, rdata} {
		defer r.pgctlStop(d)
	}
	start := time.Now()
	if err := r.runPG(ctx, "initdb", "-D", wdata, "-U", "postgres", "--auth=trust"); err != nil {
		return 0, 0, err
	}
	if err := r.pgctlStart(ctx, wdata, dir, ports[0]); err != nil {
		return 0, 0, err
	}
	if err := socketQuery(ctx, dir, ports[0]); err != nil {
		return 0, 0, err
	}
	writer := time.Since(start)
	if !withReader {
		return writer, writer, nil
	}
	if err := r.runPG(ctx, "pg_basebackup", "-h", dir, "-p", strconv.Itoa(ports[0]), "-U", "postgres", "-D", rdata,
		"-X", "stream", "--checkpoint=fast", "-R"); err != nil {
		return 0, 0, err
	}
	if err := r.pgctlStart(ctx, rdata, dir, ports[1]); err != nil {
		return 0, 0, err
	}
	if err := socketQuery(ctx, dir, ports[1]); err != nil {
		return 0, 0, err
	}
	return writer, time.Since(start), nil
}

// runPG runs a PostgreSQL program as the server account.
func (r *runner) runPG(ctx context.Context, program string, args ...string) error {
	cmd := r.acct.Command(ctx, r.bin.Path(program), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", program, err, strings.TrimSpace(out.String()))
	}
	return nil
}

func (r *runner) pgctlStart(ctx context.Context, data, sockDir string, port int) error {
	return r.runPG(ctx, "pg_ctl", "start", "-w", "-D", data, "-l", data+".log",
		"-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1", port, sockDir))
}

// pgctlStop stops a floor server at once, if one runs (cleanup: no checkpoint to wait for).
func (r *runner) pgctlStop(data string) {
	if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = r.runPG(ctx, "pg_ctl", "stop", "-w", "-m", "immediate", "-D", data)
}

// socketQuery runs a first query over a floor server's unix socket.
func socketQuery(ctx context.Context, sockDir string, port int) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", sockDir, port))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var one int
	return conn.QueryRow(cctx, "SELECT 1").Scan(&one)
}
