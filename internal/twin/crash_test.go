package twin

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/rotation"
	"github.com/apgstack/apgstack/internal/twin/secretstore"
	"github.com/apgstack/apgstack/internal/twin/statedir"
	"github.com/apgstack/apgstack/internal/twin/supervisor"
	"github.com/apgstack/apgstack/internal/writeload"
	"github.com/jackc/pgx/v5"
)

// TestSupervisorDeathAtEachStep kills the supervisor (SIGKILL, from inside, through the
// APGSTACK_TEST_CRASH_AT crash point) at each named step of an unplanned failover, a switchover
// and a secret rotation, on one prod twin (writer and synchronous reader) run by the built binary
// under its keeper, with a client writing through the writer endpoint. The keeper starts a new
// supervisor (without the crash point), and after each death: exactly one instance is out of
// recovery, the writer endpoint leads to it, every acknowledged write is there, every secret's
// AWSCURRENT logs in through the endpoint with no AWSPENDING left, and an event says what was
// recovered. The twin is stopped (not deleted) between steps, so that each step runs on the data
// the previous one left.
func TestSupervisorDeathAtEachStep(t *testing.T) {
	tw := newBinTwin(t, "--set", "environment.stage=prod")
	port, stateDir, run, status := tw.port, tw.stateDir, tw.runEnv, tw.status
	layout := statedir.Layout{Root: stateDir}
	ctx := context.Background()

	type trigger int
	const (
		killWriter trigger = iota // an unplanned failover: the writer's postmaster killed
		switchover                // apgstack failover
		rotate                    // apgstack rotate-secret --role all, the master's first (the load stopped: it writes as the master)
	)
	steps := []struct {
		at     string
		by     trigger
		events []string // besides the supervisor's recovery
	}{
		{supervisor.CrashAfterFence, killWriter, nil},
		{supervisor.CrashAfterPromote, killWriter, []string{"recovered roles"}},
		{supervisor.CrashBeforeEndpointSwitch, killWriter, []string{"rejoins as a reader"}},
		{supervisor.CrashAfterEndpointSwitch, killWriter, []string{"rejoins as a reader"}},
		{supervisor.CrashBeforeRejoin, killWriter, []string{"rejoins as a reader"}},
		// Unplanned, pg_rewind first runs the old writer's crash recovery: long enough to die in.
		{supervisor.CrashDuringRewind, killWriter, []string{"rejoins as a reader"}},
		{supervisor.CrashAfterRewind, switchover, []string{"rejoins as a reader"}},
		{supervisor.CrashAfterDrain, switchover, nil},
		{supervisor.CrashAfterPromote, switchover, []string{"recovered roles"}},
		{supervisor.CrashBeforeEndpointSwitch, switchover, []string{"rejoins as a reader"}},
		{supervisor.CrashAfterEndpointSwitch, switchover, []string{"rejoins as a reader"}},
		{supervisor.CrashBeforeRejoin, switchover, []string{"rejoins as a reader"}},
		{supervisor.CrashAfterCreateSecret, rotate, []string{"interrupted rotation of secret"}},
		{supervisor.CrashAfterSetSecret, rotate, []string{"interrupted rotation of secret"}},
		{supervisor.CrashAfterTestSecret, rotate, []string{"interrupted rotation of secret"}},
		{supervisor.CrashAfterFinishSecret, rotate, nil},
	}
	began := time.Now()
	for n, step := range steps {
		name := []string{"failover", "switchover", "rotation"}[step.by] + "/" + step.at
		ok := t.Run(name, func(t *testing.T) {
			stepBegan := time.Now()
			if _, errOut, code := run([]string{CrashAtEnv + "=" + step.at}, "up"); code != 0 {
				t.Fatalf("up: exit %d\n%s", code, errOut)
			}
			first := status()
			if first.Phase != api.PhaseReady || len(first.Instances) != 2 {
				t.Fatalf("status after up: %+v", first)
			}
			before, _, _ := run(nil, "events")
			crashLine := "step=" + step.at + " "
			crashesBefore := strings.Count(readFile(layout.LogFile()), crashLine)

			load := startLoad(t, layout, port, first.Outputs.SecretName, "acked_"+strconv.Itoa(n))
			defer load.Stop()

			switch step.by {
			case killWriter:
				for _, in := range first.Instances {
					if in.Role == api.RoleWriter {
						if err := syscall.Kill(in.PID, syscall.SIGKILL); err != nil {
							t.Fatalf("kill the writer's postmaster %d: %v", in.PID, err)
						}
					}
				}
			case switchover:
				run(nil, "failover", "--yes") // its supervisor dies under it: the exit code says nothing
			case rotate:
				load.Stop()
				run(nil, "rotate-secret", "--role", "all")
			}

			// The supervisor dies at the step and the keeper starts another; wait for the
			// twin to be whole again: a new supervisor, both instances running.
			var now api.Status
			for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
				now = status()
				if now.PID != 0 && now.PID != first.PID && now.Phase == api.PhaseReady && whole(now) {
					break
				}
			}
			if now.PID == first.PID || now.Phase != api.PhaseReady || !whole(now) {
				t.Fatalf("no whole twin under a new supervisor within 3 minutes (first pid %d):\n%+v\n%s", first.PID, now, tail(layout.LogFile(), 40))
			}
			if strings.Count(readFile(layout.LogFile()), crashLine) <= crashesBefore {
				t.Fatalf("the supervisor did not die at %s (no log line with %q)", step.at, crashLine)
			}
			rctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			if step.by != rotate {
				if _, err := load.WaitAckAfter(rctx, time.Now()); err != nil {
					t.Fatalf("writes through the endpoint did not resume: %v %+v", err, load.Stats())
				}
				load.Stop()
			}

			// Exactly one writer, the writer endpoint leads to it, every acknowledged write is there.
			checkOneWriter(t, layout, port, first.Outputs.SecretName, now, load)

			// Every secret's AWSCURRENT logs in through the writer endpoint; none is pending.
			checkSecrets(t, layout)

			after, _, _ := run(nil, "events")
			news := strings.TrimPrefix(after, before)
			for _, want := range append([]string{"recovered after an unclean stop", "pid " + strconv.Itoa(first.PID)}, step.events...) {
				if !strings.Contains(news, want) {
					t.Errorf("no event saying %q:\n%s", want, news)
				}
			}

			// Stop the twin (keeper and supervisor, the data kept) for the next step.
			sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			if err := stopKeeper(sctx, stateDir, 2*time.Minute); err != nil {
				t.Fatal(err)
			}
			if err := waitUnlocked(sctx, layout, 2*time.Minute); err != nil {
				t.Fatal(err)
			}
			t.Logf("step %s took %s", name, time.Since(stepBegan).Round(time.Second))
		})
		if !ok {
			break // the next steps start from what this one left
		}
	}
	t.Logf("%d steps took %s", len(steps), time.Since(began).Round(time.Second))
}

// startLoad starts a client writing through the writer endpoint as the master user into table,
// and waits for its first acknowledged writes.
func startLoad(t *testing.T, layout statedir.Layout, port int, secretName, table string) *writeload.Load {
	t.Helper()
	ctx := context.Background()
	cc := endpointConfig(t, layout, port, currentSecret(t, layout, secretName))
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := writeload.Setup(ctx, conn, table); err != nil {
		t.Fatal(err)
	}
	load, err := writeload.Start(ctx, writeload.Options{Config: cc, Table: table})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := load.WaitAcked(wctx, 20); err != nil {
		load.Stop()
		t.Fatalf("no write acknowledged: %v %+v", err, load.Stats())
	}
	return load
}

// checkOneWriter checks a twin recovered from a supervisor's death: exactly one instance is out
// of recovery, the writer endpoint leads to it, and every write load acknowledged is there.
func checkOneWriter(t *testing.T, layout statedir.Layout, port int, secretName string, now api.Status, load *writeload.Load) {
	t.Helper()
	ctx := context.Background()
	master := currentSecret(t, layout, secretName) // a rotation may have changed it
	cc := endpointConfig(t, layout, port, master)
	writerPort := 0
	for _, in := range now.Instances {
		c, err := pgx.ConnectConfig(ctx, instanceConfig(t, layout, in.Port, master))
		if err != nil {
			t.Fatalf("connect to %s directly: %v", in.Name, err)
		}
		var recovering bool
		if err := c.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&recovering); err != nil {
			t.Fatal(err)
		}
		c.Close(ctx)
		if !recovering {
			if writerPort != 0 {
				t.Fatalf("two writers: ports %d and %d", writerPort, in.Port)
			}
			writerPort = in.Port
		}
	}
	if writerPort == 0 {
		t.Fatalf("no writer among %+v", now.Instances)
	}
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		t.Fatalf("connect through the writer endpoint: %v", err)
	}
	defer conn.Close(ctx)
	var serverPort int
	if err := conn.QueryRow(ctx, "SELECT inet_server_port()").Scan(&serverPort); err != nil || serverPort != writerPort {
		t.Errorf("the writer endpoint leads to port %d (%v), the writer is on %d", serverPort, err, writerPort)
	}
	if err := load.Verify(ctx, conn); err != nil {
		t.Errorf("acknowledged writes: %v (%+v)", err, load.Stats())
	}
}

// TestKillDuringSwitchoverThenUp does what a user would: while `apgstack failover` switches a
// prod twin over under a write load, kill -9 of the supervisor from outside, at moments from
// the one status first shows the writer on its way out to half a second later (past the drain,
// the promotion and the endpoint's switch), then `apgstack up` at once (racing the keeper, which
// starts a supervisor too). Each time up succeeds, and the twin is whole under a new supervisor
// with one writer behind the writer endpoint and every acknowledged write.
func TestKillDuringSwitchoverThenUp(t *testing.T) {
	tw := newBinTwin(t, "--set", "environment.stage=prod")
	layout := statedir.Layout{Root: tw.stateDir}
	ctx := context.Background()
	tw.mustRun("up")
	for n, delay := range []time.Duration{0, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond} {
		first := tw.status()
		load := startLoad(t, layout, tw.port, first.Outputs.SecretName, "acked_"+strconv.Itoa(n))
		defer load.Stop() // on a failure; stopped below otherwise

		failover := exec.Command(tw.bin, tw.with("failover", "--yes")...)
		failover.Dir = tw.work
		if err := failover.Start(); err != nil {
			t.Fatal(err)
		}
		c := api.NewClient(layout.Socket())
		seen := ""
		for deadline := time.Now().Add(time.Minute); seen == "" && time.Now().Before(deadline); {
			st, err := c.Status(ctx)
			if err != nil {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			for _, in := range st.Instances {
				if in.Role == api.RoleWriter && (strings.Contains(in.Error, "failing over") || strings.Contains(in.Error, "switchover")) {
					seen = in.Name + " " + in.Error
				}
			}
		}
		if seen == "" {
			t.Fatal("the switchover was never seen under way")
		}
		time.Sleep(delay)
		if err := syscall.Kill(first.PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = failover.Wait() // its supervisor died under it: the exit code says nothing
		t.Logf("supervisor %d killed %s after status showed %q", first.PID, delay, seen)
		if _, errOut, code := tw.run("up"); code != 0 {
			t.Fatalf("up after the kill: exit %d\n%s", code, errOut)
		}
		var now api.Status
		for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
			if now = tw.status(); now.PID != 0 && now.PID != first.PID && now.Phase == api.PhaseReady && whole(now) {
				break
			}
		}
		if now.PID == first.PID || now.Phase != api.PhaseReady || !whole(now) {
			t.Fatalf("no whole twin under a new supervisor within 3 minutes:\n%+v\n%s", now, tail(layout.LogFile(), 40))
		}
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		if _, err := load.WaitAckAfter(rctx, time.Now()); err != nil {
			t.Fatalf("writes through the endpoint did not resume: %v %+v", err, load.Stats())
		}
		cancel()
		load.Stop()
		checkOneWriter(t, layout, tw.port, first.Outputs.SecretName, now, load)
		checkSecrets(t, layout)
	}
}

// whole reports a twin with a writer and a reader, both running.
func whole(st api.Status) bool {
	roles := map[string]int{}
	for _, in := range st.Instances {
		if in.State != "running" {
			return false
		}
		roles[in.Role]++
	}
	return roles[api.RoleWriter] == 1 && roles[api.RoleReader] == 1
}

func currentSecret(t *testing.T, l statedir.Layout, name string) secretstore.DatabaseSecret {
	t.Helper()
	store, err := secretstore.Open(l.SecretsDir())
	if err != nil {
		t.Fatal(err)
	}
	d, err := store.GetDatabase(name, secretstore.Current)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// endpointConfig connects through the writer endpoint as a client would (verify-full).
func endpointConfig(t *testing.T, l statedir.Layout, port int, d secretstore.DatabaseSecret) *pgx.ConnConfig {
	t.Helper()
	cc, err := pgx.ParseConfig("host=localhost port=" + strconv.Itoa(port) + " dbname=" + d.DBName + " user=" + d.Username +
		" sslmode=verify-full sslrootcert=" + l.CABundle() + " connect_timeout=5")
	if err != nil {
		t.Fatal(err)
	}
	cc.Password = d.Password
	return cc
}

// instanceConfig connects to an instance's own port, past the endpoints.
func instanceConfig(t *testing.T, l statedir.Layout, port int, d secretstore.DatabaseSecret) *pgx.ConnConfig {
	t.Helper()
	cc := endpointConfig(t, l, port, d)
	cc.Host = "127.0.0.1"
	cc.TLSConfig.ServerName = "localhost"
	return cc
}

// checkSecrets logs in with every secret's AWSCURRENT through the writer endpoint and finds no
// AWSPENDING version left.
func checkSecrets(t *testing.T, l statedir.Layout) {
	t.Helper()
	store, err := secretstore.Open(l.SecretsDir())
	if err != nil {
		t.Fatal(err)
	}
	connect := rotation.TLSConnector(l.CABundle())
	n := 0
	_ = filepath.WalkDir(l.SecretsDir(), func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		rel, _ := filepath.Rel(l.SecretsDir(), path)
		name := filepath.ToSlash(strings.TrimSuffix(rel, ".json"))
		d, err := store.GetDatabase(name, secretstore.Current)
		if err != nil {
			return nil // not a database secret
		}
		n++
		if v, err := store.Get(name, secretstore.Pending); err == nil {
			t.Errorf("secret %s: AWSPENDING version %s left", name, v.VersionID)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := connect(ctx, d)
		if err != nil {
			t.Errorf("secret %s: AWSCURRENT does not log in as %s: %v", name, d.Username, err)
			return nil
		}
		c.Close(ctx)
		return nil
	})
	if n == 0 {
		t.Fatalf("no database secret in %s", l.SecretsDir())
	}
}

func readFile(path string) string {
	data, _ := os.ReadFile(path)
	return string(data)
}

// TestSessionsSurviveSupervisorDeath kills the supervisor of a prod twin with kill -9 while a
// session is connected straight to each instance's port. While it is dead (its keeper held
// stopped, so that the moment lasts), status says the supervisor is being restarted and the
// endpoints are down (on the kernel path they go on, and a new connection through the writer
// endpoint reaches the writer); once the keeper's new supervisor serves, it has adopted both servers
// rather than restarted them: the same sessions (same backend pids) still answer, the twin is
// whole and an event says so.
func TestSessionsSurviveSupervisorDeath(t *testing.T) {
	tw := newBinTwin(t, "--set", "environment.stage=prod")
	port, stateDir, run, status := tw.port, tw.stateDir, tw.run, tw.status
	layout := statedir.Layout{Root: stateDir}
	if _, errOut, code := run("up"); code != 0 {
		t.Fatalf("up: exit %d\n%s", code, errOut)
	}
	first := status()
	if first.Phase != api.PhaseReady || !whole(first) {
		t.Fatalf("status after up: %+v", first)
	}
	ctx := context.Background()
	master := currentSecret(t, layout, first.Outputs.SecretName)
	type session struct {
		name    string
		conn    *pgx.Conn
		backend uint32
	}
	var sessions []session
	for _, in := range first.Instances {
		c, err := pgx.ConnectConfig(ctx, instanceConfig(t, layout, in.Port, master))
		if err != nil {
			t.Fatalf("connect to %s directly: %v", in.Name, err)
		}
		defer c.Close(ctx)
		sessions = append(sessions, session{in.Name, c, c.PgConn().PID()})
	}

	keeper := keeperPID(stateDir)
	if keeper == 0 {
		t.Fatal("no keeper runs")
	}
	if err := syscall.Kill(keeper, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	defer func() {
		if stopped {
			_ = syscall.Kill(keeper, syscall.SIGCONT)
		}
	}()
	if err := syscall.Kill(first.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); syscall.Kill(first.PID, 0) == nil && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	out, _, _ := run("status")
	endpoints := "endpoints are down"
	if first.Endpoints[0].Path == api.EndpointPathKernel {
		// The kernel's rules outlive the supervisor: a new connection through the writer
		// endpoint reaches the writer while it is dead.
		endpoints = "endpoints go on through the kernel's rules"
		c, err := pgx.ConnectConfig(ctx, instanceConfig(t, layout, port, master))
		if err != nil {
			t.Fatalf("writer endpoint on the kernel path while the supervisor is dead: %v", err)
		}
		var inRecovery bool
		if err := c.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil || inRecovery {
			t.Errorf("writer endpoint while the supervisor is dead reached a server in recovery=%v (%v)", inRecovery, err)
		}
		c.Close(ctx)
	}
	for _, want := range []string{api.PhaseRestarting, "sessions made to its port go on", endpoints} {
		if !strings.Contains(out, want) {
			t.Errorf("status while the supervisor is dead does not say %q:\n%s", want, out)
		}
	}
	_ = syscall.Kill(keeper, syscall.SIGCONT)
	stopped = false

	var now api.Status
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if now = status(); now.Phase == api.PhaseReady && now.PID != first.PID && whole(now) {
			break
		}
	}
	if now.Phase != api.PhaseReady || now.PID == first.PID || !whole(now) {
		t.Fatalf("no whole twin under a new supervisor within 2 minutes: %+v\n%s", now, tail(layout.LogFile(), 30))
	}
	for _, s := range sessions {
		var backend uint32
		if err := s.conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil || backend != s.backend {
			t.Errorf("session on %s after the supervisor's restart: backend %d (%v), was %d", s.name, backend, err, s.backend)
		}
	}
	for i, in := range now.Instances {
		if in.PID != first.Instances[i].PID {
			t.Errorf("%s restarted (postmaster pid %d, was %d) rather than adopted", in.Name, in.PID, first.Instances[i].PID)
		}
	}
	c, err := pgx.ConnectConfig(ctx, endpointConfig(t, layout, port, master))
	if err != nil {
		t.Fatalf("writer endpoint after the restart: %v", err)
	}
	c.Close(ctx)
	events, _, _ := run("events")
	if !strings.Contains(events, "was adopted as it ran") {
		t.Errorf("no event says the servers were adopted:\n%s", events)
	}
}
