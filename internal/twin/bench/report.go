package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Verdict says how a row compares with its target.
type Verdict string

const (
	Met          Verdict = "met"
	Missed       Verdict = "missed"
	NotAvailable Verdict = "not available" // this build cannot run the scenario: nothing was measured
	Failed       Verdict = "failed"        // the scenario broke off with an error: nothing was measured
	Info         Verdict = ""              // a figure with no target of its own (a floor, a direct baseline)
)

// Row is one line of the table.
type Row struct {
	Scenario string  `json:"scenario"`
	Measure  string  `json:"measure"`
	Result   string  `json:"result"`
	Spread   string  `json:"spread,omitempty"` // min–max over the runs (or what Note says)
	Target   string  `json:"target,omitempty"`
	Verdict  Verdict `json:"verdict"`
	Note     string  `json:"note,omitempty"`
}

// verdict turns a comparison into Met or Missed.
func verdict(ok bool) Verdict {
	if ok {
		return Met
	}
	return Missed
}

// Report is the outcome of a bench run.
type Report struct {
	Machine  Machine       `json:"machine"`
	Started  time.Time     `json:"started"`
	Elapsed  time.Duration `json:"elapsed"`
	Quick    bool          `json:"quick"`
	Settings string        `json:"settings"` // runs, pgbench duration and clients, as used
	LoadAvg  string        `json:"loadAverage,omitempty"`
	Revision string        `json:"revision,omitempty"` // the apgstack source measured
	Rows     []Row         `json:"rows"`
	// Timelines are the acknowledged writes around one SIGKILL failover and one switchover.
	Timelines []Timeline `json:"timelines,omitempty"`
}

// WriteTable prints the rows as an aligned text table.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tMEASURE\tRESULT\tSPREAD\tTARGET\tVERDICT\tNOTE")
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", row.Scenario, row.Measure, row.Result, dash(row.Spread), dash(row.Target), dash(string(row.Verdict)), row.Note)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Markdown renders BENCHMARKS.md: how it was produced, the machine, the table, and what the
// figures mean.
func (r *Report) Markdown() string {
	var b strings.Builder
	b.WriteString("# apgstack benchmarks\n\n")
	b.WriteString("Written by `apgstack bench")
	if r.Quick {
		b.WriteString(" --quick")
	}
	b.WriteString("`; run it again to get the figures of your own machine. ")
	b.WriteString("Targets are reported, not asserted: a missed target is shown as missed.\n\n")

	b.WriteString("## Machine\n\n")
	b.WriteString("| | |\n|---|---|\n")
	for _, kv := range r.Machine.Fields() {
		fmt.Fprintf(&b, "| %s | %s |\n", kv[0], mdCell(kv[1]))
	}
	if r.Revision != "" {
		fmt.Fprintf(&b, "| apgstack revision | %s |\n", mdCell(r.Revision))
	}
	fmt.Fprintf(&b, "| Date | %s |\n", r.Started.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "| Duration of the run | %s |\n", r.Elapsed.Round(time.Second))
	if r.LoadAvg != "" {
		fmt.Fprintf(&b, "| Load average at the start (1, 5, 15 min) | %s |\n", mdCell(r.LoadAvg))
	}
	if r.Settings != "" {
		fmt.Fprintf(&b, "| Settings | %s |\n", mdCell(r.Settings))
	}

	b.WriteString("\n## Results\n\n")
	b.WriteString("| Scenario | Measure | Result | Spread | Target | Verdict | Note |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, row := range r.Rows {
		v := string(row.Verdict)
		switch row.Verdict {
		case Met:
			v = "✅ met"
		case Missed:
			v = "❌ missed"
		case NotAvailable:
			v = "⚠️ not available"
		case Failed:
			v = "❌ failed"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", mdCell(row.Scenario), mdCell(row.Measure), mdCell(row.Result),
			mdCell(row.Spread), mdCell(row.Target), v, mdCell(row.Note))
	}
	if r.EndpointChart() != "" {
		fmt.Fprintf(&b, "\n![Endpoint throughput in percent of a direct connection](%s)\n", EndpointChartFile)
	}
	for _, t := range r.Timelines {
		fmt.Fprintf(&b, "\n![%s](%s)\n", t.Title(), t.File())
	}
	b.WriteString(methodology)
	return b.String()
}

// mdCell keeps a value inside its table cell.
func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

const methodology = `
## How the figures are taken

- **Interleaving.** The two sides of every comparison run alternately (A B, then B A in the
  next round of pgbench comparisons; dev, floor, prod, floor for time to ready), so that whatever
  else the machine does falls on both; a ratio is computed per pair and the table gives the median
  ratio and, as its spread, the smallest and largest ratio of the pairs. The load average at the
  start says how busy the machine was with other work.
- **Time to ready.** From the call ` + "`apgstack up`" + ` makes (the supervisor started in the
  background as the real binary, ` + "`apgstack supervise`" + `) to the first successful query through the
  writer endpoint over TLS with ` + "`sslmode=verify-full`" + ` against the twin's CA, on a new state
  directory each run: initdb with data checksums, certificates, the secret, the bootstrap, and for
  prod the reader (base backup, streaming, synchronous replication). The floor is the same
  PostgreSQL with nothing of apgstack: ` + "`initdb`" + ` and ` + "`pg_ctl start -w`" + ` to the first query (dev); then
  ` + "`pg_basebackup -R`" + ` and ` + "`pg_ctl start -w`" + ` of a reader (prod floor), measured in the same run.
- **Failover.** A writing client (one session, one INSERT per transaction, an id counted as
  acknowledged only once its COMMIT returned, 5 s timeout per connect or transaction, reconnecting
  after 20 ms) runs through the writer endpoint over TLS on the prod twin (synchronous replication). The
  writer's postmaster is sent SIGKILL (its backends may serve their connections a moment longer,
  as after a real postmaster crash), or, for a hung writer, SIGSTOP together with every process of
  the server. The time is from the signal to the end of the first outage the client saw after it
  (its first acknowledged write once it had failed and reconnected).
  Afterwards every acknowledged id is looked up through the writer endpoint: a missing one is an
  acknowledged write lost. Between runs the twin must be whole again (two servers, the reader in
  sync) before the next signal.
- **Switchover.** The same client during a planned switchover; write unavailability is the longest
  time without an acknowledged write (sampled every 2 ms) from the request to a little after the
  writes resumed, whether the client saw errors or only waited.
- **Endpoint overhead.** pgbench (same client count and duration on both sides, TLS with
  ` + "`PGSSLMODE=verify-full`" + `) through the writer and reader endpoints against a direct TCP connection
  to the server behind them; select-only (` + "`-S`" + `) and TPC-B-like.
- **Best-practice overhead.** One server, restarted alternately with the postgresql.conf apgstack
  renders (best-practice parameter groups: pgaudit, pg_stat_statements, auto_explain, logging)
  and with a minimal one (PostgreSQL's defaults, only port, sockets and the same TLS settings);
  pgbench TPC-B-like and select-only over TLS on both.
- **Synth.** Building and writing the three templates and their parameter files in-process,
  the median of many iterations.
`
