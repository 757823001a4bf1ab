package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apgstack/apgstack/internal/scram"

	"github.com/jackc/pgx/v5"

	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/internal/twin/certs"
	"github.com/apgstack/apgstack/internal/twin/endpoint"
	"github.com/apgstack/apgstack/internal/twin/instance"
	"github.com/apgstack/apgstack/internal/twin/postgres"
)

// target is where pgbench connects: over TCP with TLS verify-full, with a password kept out of
// the command line (PGPASSWORD in pgbench's environment only).
type target struct {
	port     int
	user     string
	password string
	db       string
	ca       string
}

// pgbenchResult is what one pgbench run reports.
type pgbenchResult struct {
	TPS       float64
	LatencyMS float64
}

var (
	tpsRE     = regexp.MustCompile(`(?m)^tps = ([0-9.]+) \(without initial connection time\)`)
	latencyRE = regexp.MustCompile(`(?m)^latency average = ([0-9.]+) ms`)
)

// parsePgbench reads tps and average latency from pgbench's report.
func parsePgbench(out string) (pgbenchResult, error) {
	m := tpsRE.FindStringSubmatch(out)
	if m == nil {
		return pgbenchResult{}, fmt.Errorf("pgbench: no tps in its report: %s", oneLine(out))
	}
	tps, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return pgbenchResult{}, fmt.Errorf("pgbench tps %q: %w", m[1], err)
	}
	res := pgbenchResult{TPS: tps}
	if m := latencyRE.FindStringSubmatch(out); m != nil {
		res.LatencyMS, _ = strconv.ParseFloat(m[1], 64)
	}
	return res, nil
}

// pgbench runs the client (it is a client: root may run it) against t.
func (r *runner) pgbench(ctx context.Context, t target, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, r.bin.Path("pgbench"), args...)
	// An explicit environment: no ~/.pgpass or PG* variables of the caller change what is measured.
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + r.work, "LANG=C.UTF-8",
		"PGHOST=127.0.0.1", "PGPORT=" + strconv.Itoa(t.port), "PGUSER=" + t.user, "PGDATABASE=" + t.db,
		"PGPASSWORD=" + t.password, "PGSSLMODE=verify-full", "PGSSLROOTCERT=" + t.ca, "PGAPPNAME=apgstack-bench"}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	text := strings.ReplaceAll(out.String(), t.password, "********")
	if err != nil {
		return text, fmt.Errorf("pgbench %s: %w: %s", strings.Join(args, " "), err, oneLine(lastLines(text, 5)))
	}
	return text, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// workload is one pgbench mode.
type workload struct {
	name string
	args []string
}

var (
	selectOnly = workload{"select-only", []string{"-S"}}
	tpcb       = workload{"TPC-B-like", nil}
)

// run runs the workload for the configured duration.
func (r *runner) run(ctx context.Context, t target, w workload) (pgbenchResult, error) {
	args := append([]string{"-n", "-c", strconv.Itoa(r.s.clients), "-j", strconv.Itoa(r.s.threads), "-T", strconv.Itoa(r.s.pgbenchSeconds)}, w.args...)
	out, err := r.pgbench(ctx, t, args...)
	if err != nil {
		return pgbenchResult{}, err
	}
	return parsePgbench(out)
}

// comparison is one A-versus-B pgbench figure gathered over interleaved rounds.
type comparison struct {
	scenario, measure string
	w                 workload
	a, b              target
	aName, bName      string
	aRes, bRes        []pgbenchResult
}

// interleave runs every comparison's two sides one after the other, round after round.
func (r *runner) interleave(ctx context.Context, cs []*comparison) error {
	for round := 1; round <= r.s.pgbenchRounds; round++ {
		for _, c := range cs {
			// Odd rounds A first, even rounds B first: whatever the first of two runs pays (a cache
			// the other warmed, a checkpoint due) falls on both sides.
			first, second := c.a, c.b
			if round%2 == 0 {
				first, second = c.b, c.a
			}
			x, err := r.run(ctx, first, c.w)
			if err != nil {
				return err
			}
			y, err := r.run(ctx, second, c.w)
			if err != nil {
				return err
			}
			a, b := x, y
			if round%2 == 0 {
				a, b = y, x
			}
			c.aRes, c.bRes = append(c.aRes, a), append(c.bRes, b)
			r.progress("%s %s round %d/%d: %s %.0f tps, %s %.0f tps", c.measure, c.w.name, round, r.s.pgbenchRounds, c.aName, a.TPS, c.bName, b.TPS)
		}
	}
	return nil
}

func tpsOf(rs []pgbenchResult) []float64 {
	out := make([]float64, len(rs))
	for i, x := range rs {
		out[i] = x.TPS
	}
	return out
}

func latencyOf(rs []pgbenchResult) []float64 {
	out := make([]float64, len(rs))
	for i, x := range rs {
		out[i] = x.LatencyMS
	}
	return out
}

// endpointRow: endpoint TPS as a share of direct TPS, target ≥ 95 %.
func endpointRow(c *comparison) Row {
	ratio := Summarize(Ratios(tpsOf(c.aRes), tpsOf(c.bRes)))
	a, b := Summarize(tpsOf(c.aRes)), Summarize(tpsOf(c.bRes))
	la, lb := Summarize(latencyOf(c.aRes)), Summarize(latencyOf(c.bRes))
	return Row{Scenario: c.scenario, Measure: c.measure + ", " + c.w.name, Result: fmt.Sprintf("%.1f %% of direct", ratio.Median*100),
		Spread: SpreadPercent(ratio), Target: "≥ 95 %", Verdict: verdict(ratio.Median >= 0.95),
		Note: fmt.Sprintf("median %.0f vs %.0f tps; latency %.2f vs %.2f ms; %d rounds", a.Median, b.Median, la.Median, lb.Median, ratio.N) + noisy(ratio, 0.95)}
}

// noisy warns when the pairs fall on both sides of the target by a wide margin: the median then
// says less than the spread, and the machine was too busy for a firm verdict.
func noisy(s Summary, target float64) string {
	if s.N >= 2 && s.Min < target && s.Max > target && s.Max-s.Min > 0.25 {
		return fmt.Sprintf("; noisy: the pairs fall on both sides of the target (spread %.0f points), rerun on a quieter machine", (s.Max-s.Min)*100)
	}
	return ""
}

// endpoint compares pgbench through the writer and reader endpoints with a direct connection to
// the server behind each, on the prod twin.
func (r *runner) endpoint(ctx context.Context) error {
	tw, err := r.prodTwin(ctx)
	if err != nil {
		return err
	}
	st, err := tw.status(ctx)
	if err != nil {
		return err
	}
	w, ok1 := writerOf(st)
	rd, ok2 := readerOf(st)
	if !ok1 || !ok2 {
		return fmt.Errorf("the prod twin has no writer or no reader: %+v", st.Instances)
	}
	base := target{user: tw.secret.Username, password: tw.secret.Password, db: tw.secret.DBName, ca: st.Outputs.CABundle}
	at := func(port int) target { t := base; t.port = port; return t }
	r.progress("endpoint: pgbench -i -s %d through the writer endpoint", r.s.scale)
	if _, err := r.pgbench(ctx, at(tw.cfg.Database.Port), "-i", "-q", "-s", strconv.Itoa(r.s.scale)); err != nil {
		return err
	}
	if err := tw.waitWhole(ctx, r.s.wholeTimeout); err != nil { // the reader has the tables
		return err
	}
	if err := waitReplayed(ctx, tw); err != nil {
		return err
	}
	// The twin's endpoints take the kernel path where nftables works (status says which); their
	// fallback, the user-space proxy, is measured through a Proxy of the same code on a port of
	// its own, so one run shows both paths against direct.
	path := map[string]string{}
	for _, e := range st.Endpoints {
		path[e.Name] = e.Path
	}
	wp, err := benchProxy("writer", w.Port)
	if err != nil {
		return err
	}
	defer wp.Close()
	rp, err := benchProxy("reader", rd.Port)
	if err != nil {
		return err
	}
	defer rp.Close()
	wm, rm := "writer endpoint ("+path["writer"]+" path)", "reader endpoint ("+path["reader"]+" path)"
	cs := []*comparison{
		{scenario: "endpoint", measure: wm, w: selectOnly, a: at(tw.cfg.Database.Port), b: at(w.Port), aName: "endpoint", bName: "direct"},
		{scenario: "endpoint", measure: wm, w: tpcb, a: at(tw.cfg.Database.Port), b: at(w.Port), aName: "endpoint", bName: "direct"},
		{scenario: "endpoint", measure: rm, w: selectOnly, a: at(tw.cfg.ReaderPort()), b: at(rd.Port), aName: "endpoint", bName: "direct"},
		{scenario: "endpoint", measure: "writer endpoint (proxy path, the fallback)", w: selectOnly, a: at(wp.port), b: at(w.Port), aName: "proxy", bName: "direct"},
		{scenario: "endpoint", measure: "writer endpoint (proxy path, the fallback)", w: tpcb, a: at(wp.port), b: at(w.Port), aName: "proxy", bName: "direct"},
		{scenario: "endpoint", measure: "reader endpoint (proxy path, the fallback)", w: selectOnly, a: at(rp.port), b: at(rd.Port), aName: "proxy", bName: "direct"},
	}
	if err := r.interleave(ctx, cs); err != nil {
		return err
	}
	for _, c := range cs {
		row := endpointRow(c)
		if c.aName == "proxy" {
			// The 95 % target is the kernel path's; the fallback's figure is for comparison.
			row.Target, row.Verdict = "", Info
		}
		r.add(row)
	}
	return nil
}

// localProxy is a user-space endpoint proxy the bench runs itself.
type localProxy struct {
	*endpoint.Proxy
	port int
}

func benchProxy(name string, backendPort int) (*localProxy, error) {
	p, err := endpoint.Listen("bench-"+name+"-proxy", "127.0.0.1:0", nil)
	if err != nil {
		return nil, err
	}
	p.SetBackends([]string{net.JoinHostPort("127.0.0.1", strconv.Itoa(backendPort))})
	_, ps, _ := net.SplitHostPort(p.Addr())
	port, err := strconv.Atoi(ps)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("bench proxy address %s: %w", p.Addr(), err)
	}
	return &localProxy{Proxy: p, port: port}, nil
}

// waitReplayed waits until the reader has replayed everything the writer wrote.
func waitReplayed(ctx context.Context, tw *liveTwin) error {
	deadline := time.Now().Add(time.Minute)
	for {
		st, err := tw.status(ctx)
		if err != nil {
			return err
		}
		if rd, ok := readerOf(st); ok && rd.LagBytes != nil && *rd.LagBytes == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("the reader did not catch up within a minute")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// bestPractice compares pgbench on one server restarted alternately with the postgresql.conf
// apgstack renders and with a minimal one (PostgreSQL's defaults), both over the same TLS.
func (r *runner) bestPractice(ctx context.Context) error {
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	dir := filepath.Join(r.work, "bp")
	r.defer_(func() { _ = os.RemoveAll(dir) })
	tlsDir := filepath.Join(r.work, "bp-tls")
	r.defer_(func() { _ = os.RemoveAll(tlsDir) })
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		return err
	}
	tf := certs.Files{CA: filepath.Join(tlsDir, "ca.pem"), CAKey: filepath.Join(tlsDir, "ca-key.pem"),
		Cert: filepath.Join(tlsDir, "server.crt"), Key: filepath.Join(tlsDir, "server.key")}
	if err := certs.Ensure(tf, time.Now()); err != nil {
		return err
	}
	cert, err := os.ReadFile(tf.Cert)
	if err != nil {
		return err
	}
	key, err := os.ReadFile(tf.Key)
	if err != nil {
		return err
	}
	plan, err := postgres.PlanParameters(append(slices.Clone(bestpractice.ClusterParameters), bestpractice.InstanceParameterGroup(r.cfg.Database.PgauditLog)...), r.bin.HasLibrary)
	if err != nil {
		return err
	}
	in := &instance.Instance{Name: "bp", Dir: dir, Port: ports[0], Bin: r.bin, Acct: r.acct, Log: r.log}
	r.defer_(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = in.Stop(ctx)
	})
	if err := in.Prepare(); err != nil {
		return err
	}
	r.progress("bestpractice: initdb")
	if err := in.InitDB(ctx); err != nil {
		return err
	}
	if err := in.WriteTLS(cert, key); err != nil {
		return err
	}
	users := []string{r.acct.Name}
	if u, err := user.Current(); err == nil {
		users = append(users, u.Username)
	}
	full := postgres.Conf(plan, postgres.Server{Name: "bp", Port: in.Port, SocketDir: in.SocketDir(), CertFile: in.CertFile(), KeyFile: in.KeyFile()})
	minimal := fmt.Sprintf("# PostgreSQL's defaults: only where to listen and the same TLS as the full configuration\n"+
		"listen_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = %s\nssl = on\nssl_cert_file = %s\nssl_key_file = %s\n",
		in.Port, postgres.Quote(in.SocketDir()), postgres.Quote(in.CertFile()), postgres.Quote(in.KeyFile()))
	for name, data := range map[string]string{"pg_hba.conf": postgres.HBA(true), "pg_ident.conf": postgres.Ident(users), "postgresql.conf": full} {
		if err := in.WriteFile(name, []byte(data)); err != nil {
			return err
		}
	}
	restart := func(conf string) error {
		if err := in.Stop(ctx); err != nil {
			return err
		}
		if err := in.WriteFile("postgresql.conf", []byte(conf)); err != nil {
			return err
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		return in.Start(sctx)
	}
	if err := restart(full); err != nil {
		return err
	}
	password, err := benchRole(ctx, in)
	if err != nil {
		return err
	}
	t := target{port: in.Port, user: "bench", password: password, db: "postgres", ca: tf.CA}
	if _, err := r.pgbench(ctx, t, "-i", "-q", "-s", strconv.Itoa(r.s.scale)); err != nil {
		return err
	}
	// Per round: full configuration (both workloads), then defaults (both workloads).
	workloads := []workload{tpcb, selectOnly}
	fullRes := make([][]pgbenchResult, len(workloads))
	defRes := make([][]pgbenchResult, len(workloads))
	for round := 1; round <= r.s.pgbenchRounds; round++ {
		// Odd rounds full first, even rounds defaults first (A B B A ...): what comes first after
		// the previous side (a warm cache, a checkpoint) falls on both sides equally.
		order := []int{0, 1}
		if round%2 == 0 {
			order = []int{1, 0}
		}
		for _, side := range order {
			conf := []string{full, minimal}[side]
			if err := restart(conf); err != nil {
				return err
			}
			for i, w := range workloads {
				res, err := r.run(ctx, t, w)
				if err != nil {
					return err
				}
				if side == 0 {
					fullRes[i] = append(fullRes[i], res)
				} else {
					defRes[i] = append(defRes[i], res)
				}
			}
		}
		r.progress("bestpractice round %d/%d: TPC-B full %.0f / defaults %.0f tps; select-only full %.0f / defaults %.0f tps", round, r.s.pgbenchRounds,
			fullRes[0][round-1].TPS, defRes[0][round-1].TPS, fullRes[1][round-1].TPS, defRes[1][round-1].TPS)
	}
	for i, w := range workloads {
		r.add(bestPracticeRow(w, fullRes[i], defRes[i]))
	}
	return nil
}

// bestPracticeRow: the TPS the parameter groups cost, 1 − full/defaults, target < 10 %.
func bestPracticeRow(w workload, full, def []pgbenchResult) Row {
	var cost []float64
	for _, x := range Ratios(tpsOf(full), tpsOf(def)) {
		cost = append(cost, 1-x)
	}
	c := Summarize(cost)
	return Row{Scenario: "best practice", Measure: "TPS cost of the parameter groups, " + w.name, Result: fmt.Sprintf("%.1f %%", c.Median*100),
		Spread: SpreadPercent(c), Target: "< 10 %", Verdict: verdict(c.Median < 0.10),
		Note: fmt.Sprintf("median %.0f tps with them vs %.0f with defaults; %d rounds", Summarize(tpsOf(full)).Median, Summarize(tpsOf(def)).Median, c.N) + noisy(c, 0.10)}
}

// benchRole creates the pgbench login on the best-practice server (a superuser: pgbench -i
// creates tables), its password sent only as a SCRAM verifier so no log can hold it.
func benchRole(ctx context.Context, in *instance.Instance) (string, error) {
	raw := make([]byte, 18)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	password := hex.EncodeToString(raw)
	verifier, err := scram.Verifier(password)
	if err != nil {
		return "", err
	}
	conn, err := in.Connect(ctx, "postgres")
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE ROLE "+pgx.Identifier{"bench"}.Sanitize()+" LOGIN SUPERUSER PASSWORD "+postgres.Quote(verifier)); err != nil {
		return "", fmt.Errorf("create the bench role: %w", err)
	}
	return password, nil
}
