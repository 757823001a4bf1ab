package bench

// These tests cover the statistics, parsing and reporting only; the scenarios themselves are
// benchmarks, run by `apgstack bench`, never by `go test`.

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/apgstack/apgstack/internal/testkit/golden"
	"github.com/apgstack/apgstack/internal/twin/api"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestSummarize(t *testing.T) {
	for _, tt := range []struct {
		in                        []float64
		min, q1, median, q3, max_ float64
	}{
		{[]float64{3}, 3, 3, 3, 3, 3},
		{[]float64{2, 1}, 1, 1.25, 1.5, 1.75, 2},
		{[]float64{5, 1, 4, 2, 3}, 1, 2, 3, 4, 5},
		{[]float64{1, 2, 3, 4}, 1, 1.75, 2.5, 3.25, 4},
	} {
		s := Summarize(tt.in)
		if s.N != len(tt.in) || !near(s.Min, tt.min) || !near(s.Q1, tt.q1) || !near(s.Median, tt.median) || !near(s.Q3, tt.q3) || !near(s.Max, tt.max_) {
			t.Errorf("Summarize(%v) = %+v", tt.in, s)
		}
	}
	if s := Summarize(nil); s.N != 0 || !math.IsNaN(s.Median) {
		t.Errorf("Summarize(nil) = %+v", s)
	}
	in := []float64{3, 1, 2}
	Summarize(in)
	if in[0] != 3 {
		t.Error("Summarize sorted its input in place")
	}
}

func TestPairs(t *testing.T) {
	r := Ratios([]float64{2, 3, 5, 7}, []float64{1, 0, 10})
	if len(r) != 2 || r[0] != 2 || r[1] != 0.5 {
		t.Errorf("Ratios = %v, want [2 0.5] (zero divisor left out, unpaired value ignored)", r)
	}
	d := Diffs([]float64{2, 3}, []float64{1.5, 4, 9})
	if len(d) != 2 || d[0] != 0.5 || d[1] != -1 {
		t.Errorf("Diffs = %v", d)
	}
	if s := Seconds([]time.Duration{1500 * time.Millisecond}); s[0] != 1.5 {
		t.Errorf("Seconds = %v", s)
	}
}

func TestFormat(t *testing.T) {
	for _, tt := range []struct {
		s    float64
		want string
	}{
		{0.0000421, "42 µs"}, {0.0123, "12 ms"}, {0.9994, "999 ms"}, {1.234, "1.23 s"}, {math.NaN(), "n/a"},
	} {
		if got := FormatSeconds(tt.s); got != tt.want {
			t.Errorf("FormatSeconds(%v) = %q, want %q", tt.s, got, tt.want)
		}
	}
	if got := SpreadSeconds(Summarize([]float64{1})); got != "" {
		t.Errorf("spread of one value = %q", got)
	}
	if got := SpreadSeconds(Summarize([]float64{0.5, 2})); got != "500 ms–2.00 s" {
		t.Errorf("SpreadSeconds = %q", got)
	}
	if got := SpreadRatio(Summarize([]float64{0.9, 1.25})); got != "0.90–1.25" {
		t.Errorf("SpreadRatio = %q", got)
	}
	if got := SpreadPercent(Summarize([]float64{0.031, -0.02})); got != "-2.0–3.1 %" {
		t.Errorf("SpreadPercent = %q", got)
	}
}

func TestParsePgbench(t *testing.T) {
	out := `pgbench (15.18 (Debian 15.18-0+deb12u1))
transaction type: <builtin: select only>
scaling factor: 4
query mode: simple
number of clients: 4
number of threads: 2
maximum number of tries: 1
duration: 2 s
number of transactions actually processed: 45123
number of failed transactions: 0 (0.000%)
latency average = 0.175 ms
initial connection time = 21.420 ms
tps = 22842.317761 (without initial connection time)
`
	res, err := parsePgbench(out)
	if err != nil || !near(res.TPS, 22842.317761) || !near(res.LatencyMS, 0.175) {
		t.Errorf("parsePgbench = %+v, %v", res, err)
	}
	if _, err := parsePgbench("pgbench: error: connection to server failed"); err == nil {
		t.Error("no error for a report without tps")
	}
}

func TestParentPID(t *testing.T) {
	for _, tt := range []struct {
		stat string
		want int
		ok   bool
	}{
		{"3475 (postgres) S 3472 3475 3475 0 -1", 3472, true},
		{"12 (a (weird) name) R 7 12 12", 7, true},
		{"garbage", 0, false},
	} {
		got, ok := parentPID([]byte(tt.stat))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parentPID(%q) = %d, %v", tt.stat, got, ok)
		}
	}
}

func TestMachineFields(t *testing.T) {
	cpu := []byte("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor\n")
	if got := cpuModel(cpu); got != "Intel(R) Xeon(R) Processor" {
		t.Errorf("cpuModel = %q", got)
	}
	if got := memTotalMiB([]byte("MemTotal:       24684096 kB\nMemFree: 1 kB\n")); got != 24105 {
		t.Errorf("memTotalMiB = %d", got)
	}
	if got := osName([]byte("NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n")); got != "Debian GNU/Linux 12 (bookworm)" {
		t.Errorf("osName = %q", got)
	}
	m := DescribeMachine("15.18")
	if m.Cores < 1 || m.PostgreSQL != "15.18" || !strings.HasPrefix(m.Go, "go") {
		t.Errorf("DescribeMachine = %+v", m)
	}
}

func TestWhole(t *testing.T) {
	w := api.Instance{Name: "instance1", Role: api.RoleWriter, State: api.StateRunning}
	r := api.Instance{Name: "instance2", Role: api.RoleReader, State: api.StateRunning, Promotable: true}
	notInSync := r
	notInSync.Promotable = false
	dead := w
	dead.State = api.StateFailed
	for _, tt := range []struct {
		name string
		st   api.Status
		want bool
	}{
		{"whole", api.Status{Phase: api.PhaseReady, Instances: []api.Instance{w, r}}, true},
		{"reader not in sync", api.Status{Phase: api.PhaseReady, Instances: []api.Instance{w, notInSync}}, false},
		{"writer failed", api.Status{Phase: api.PhaseReady, Instances: []api.Instance{dead, r}}, false},
		{"no reader", api.Status{Phase: api.PhaseReady, Instances: []api.Instance{w}}, false},
		{"two writers", api.Status{Phase: api.PhaseReady, Instances: []api.Instance{w, w, r}}, false},
		{"degraded", api.Status{Phase: api.PhaseReady, Degraded: true, Instances: []api.Instance{w, r}}, false},
		{"starting", api.Status{Phase: api.PhaseStarting, Instances: []api.Instance{w, r}}, false},
	} {
		if got, why := whole(tt.st, "prod"); got != tt.want {
			t.Errorf("%s: whole = %v (%s)", tt.name, got, why)
		}
	}
	if ok, _ := whole(api.Status{Phase: api.PhaseReady, Instances: []api.Instance{w}}, "dev"); !ok {
		t.Error("dev without a reader is whole")
	}
}

func TestVerdicts(t *testing.T) {
	rows := readyRows([]float64{3, 3.2}, []float64{2.5, 2.4}, []float64{5, 6}, []float64{3, 3})
	if rows[1].Verdict != Met || rows[3].Verdict != Missed {
		t.Errorf("ready verdicts: dev %s (want met: +0.5 s, +0.8 s), prod %s (want missed: 1.67×, 2×)", rows[1].Verdict, rows[3].Verdict)
	}
	if rows[0].Verdict != Info || rows[2].Verdict != Info {
		t.Error("floors have no target")
	}

	outs := []outcome{{recovery: 1500 * time.Millisecond, acked: 100}, {recovery: 5500 * time.Millisecond, acked: 100, lost: 1}, {recovery: time.Second, acked: 100}}
	rows = failoverRows(sigkill, 3, outs, nil)
	if len(rows) != 3 || rows[0].Verdict != Met || rows[1].Verdict != Missed || rows[2].Verdict != Missed || rows[2].Result != "1 of 300" {
		t.Errorf("failover rows: %+v", rows)
	}
	partial := failoverRows(sigstop, 3, outs[:1], errors.New("writes did not resume"))
	if partial[0].Verdict != Missed || !strings.Contains(partial[0].Note, "1 of 3 runs") {
		t.Errorf("partial runs must not be called met: %+v", partial[0])
	}
	na := failoverRows(sigkill, 3, nil, fmt.Errorf("%w: the supervisor did not fail over", errNotAvailable))
	if len(na) != 1 || na[0].Verdict != NotAvailable || na[0].Note != "the supervisor did not fail over" {
		t.Errorf("not available: %+v", na)
	}
	slow := failoverRows(sigkill, 3, nil, errors.New("writes did not resume within 30s"))
	if slow[0].Verdict != Missed {
		t.Errorf("a failover that never recovers missed its target: %+v", slow[0])
	}

	sw := switchoverRows(2, []outcome{{stall: 300 * time.Millisecond, errors: 1, reconnect: 1, acked: 50}, {stall: 400 * time.Millisecond, errors: 3, reconnect: 1, acked: 50}}, nil)
	if sw[0].Verdict != Met || sw[1].Result != "2" || sw[1].Verdict != Missed || sw[2].Verdict != Met {
		t.Errorf("switchover rows: %+v", sw)
	}

	ep := endpointRow(&comparison{scenario: "endpoint", measure: "writer endpoint", w: selectOnly,
		aRes: []pgbenchResult{{TPS: 960}, {TPS: 940}}, bRes: []pgbenchResult{{TPS: 1000}, {TPS: 1000}}})
	if ep.Verdict != Met || ep.Result != "95.0 % of direct" {
		t.Errorf("endpoint row: %+v", ep)
	}
	if strings.Contains(ep.Note, "noisy") {
		t.Errorf("steady pairs called noisy: %s", ep.Note)
	}
	wild := endpointRow(&comparison{scenario: "endpoint", measure: "writer endpoint", w: selectOnly,
		aRes: []pgbenchResult{{TPS: 500}, {TPS: 1100}}, bRes: []pgbenchResult{{TPS: 1000}, {TPS: 1000}}})
	if !strings.Contains(wild.Note, "noisy") {
		t.Errorf("pairs on both sides of the target (50 %%, 110 %%) not called noisy: %s", wild.Note)
	}
	bp := bestPracticeRow(tpcb, []pgbenchResult{{TPS: 880}, {TPS: 900}}, []pgbenchResult{{TPS: 1000}, {TPS: 1000}})
	if bp.Verdict != Missed || bp.Result != "11.0 %" {
		t.Errorf("best-practice row: %+v", bp)
	}
}

func TestNewSettings(t *testing.T) {
	q := newSettings(true, 0)
	f := newSettings(false, 0)
	if q.killRuns >= f.killRuns || q.pgbenchSeconds >= f.pgbenchSeconds || f.killRuns < 10 {
		t.Errorf("quick %+v, full %+v", q, f)
	}
	if r := newSettings(true, 7); r.readyRuns != 7 || r.killRuns != 7 || r.pgbenchRounds != 7 {
		t.Errorf("--runs 7: %+v", r)
	}
	if err := CheckOnly([]string{"ready", "synth"}); err != nil {
		t.Error(err)
	}
	if err := CheckOnly([]string{"fast"}); err == nil || !strings.Contains(err.Error(), `"fast"`) || !strings.Contains(err.Error(), "failover") {
		t.Errorf("CheckOnly(fast) = %v", err)
	}
}

func sampleReport() *Report {
	return &Report{
		Machine: Machine{CPU: "Test CPU", Cores: 2, MemoryMiB: 2048, OS: "Debian GNU/Linux 12 (bookworm)", Kernel: "Linux 6.1", PostgreSQL: "15.18", Go: "go1.26 linux/amd64"},
		Started: time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC), Elapsed: 97 * time.Second, Quick: true,
		Settings: "time to ready 2 runs", LoadAvg: "0.50, 0.40, 0.30", Revision: "0123456789ab",
		Rows: []Row{
			{Scenario: "synth", Measure: "write the three templates", Result: "18 ms", Spread: "11 ms–30 ms", Target: "< 100 ms", Verdict: Met, Note: "median of 20"},
			{Scenario: "endpoint", Measure: "writer endpoint, select-only", Result: "80.0 % of direct", Target: "≥ 95 %", Verdict: Missed, Note: "a | b"},
			{Scenario: "switchover", Measure: "write unavailability", Result: "not measured", Verdict: NotAvailable, Note: "no switchover"},
			{Scenario: "time to ready", Measure: "dev floor", Result: "600 ms", Verdict: Info},
		},
	}
}

func TestMarkdown(t *testing.T) {
	golden.Assert(t, "BENCHMARKS.md", []byte(sampleReport().Markdown()))
}

func TestTable(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport().WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "table.txt", b.Bytes())
}
