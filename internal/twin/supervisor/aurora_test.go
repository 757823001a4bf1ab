package supervisor

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apgstack/apgstack/internal/twin/api"
)

// replicaStatus is aurora_replica_status() as "server_id/session_id" rows, sorted by
// server_id, and each row's lag (nil when NULL).
func replicaStatus(t *testing.T, c *pgx.Conn) ([]string, map[string]*float32) {
	t.Helper()
	rows, err := c.Query(context.Background(), "SELECT server_id, session_id, replica_lag_in_msec, durable_lsn FROM aurora_replica_status() ORDER BY server_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	lag := map[string]*float32{}
	for rows.Next() {
		var id, session string
		var l *float32
		var lsn *int64
		if err := rows.Scan(&id, &session, &l, &lsn); err != nil {
			t.Fatal(err)
		}
		out = append(out, id+"/"+session)
		lag[id] = l
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out, lag
}

func queryText(t *testing.T, c *pgx.Conn, sql string) string {
	t.Helper()
	var s string
	if err := c.QueryRow(context.Background(), sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

// checkTopology: through the writer and the reader endpoints, aurora_db_instance_identifier()
// names the instance behind the endpoint, and aurora_replica_status() has a row per instance,
// MASTER_SESSION_ID for the writer and the reader's own UUID for the reader.
func (h *haTwin) checkTopology(t *testing.T, writer, reader string) {
	t.Helper()
	w := mustConnect(t, h.twin, h.cfg.Database.Port)
	r := mustConnect(t, h.twin, h.cfg.ReaderPort())
	if got := queryText(t, w, "SELECT aurora_db_instance_identifier()"); got != writer {
		t.Errorf("writer endpoint: aurora_db_instance_identifier() = %s, want %s", got, writer)
	}
	if got := queryText(t, r, "SELECT aurora_db_instance_identifier()"); got != reader {
		t.Errorf("reader endpoint: aurora_db_instance_identifier() = %s, want %s", got, reader)
	}
	uuid := queryText(t, w, fmt.Sprintf("SELECT aurora.reader_session_id('%s')", reader))
	want := []string{writer + "/MASTER_SESSION_ID", reader + "/" + uuid}
	if writer > reader {
		want[0], want[1] = want[1], want[0]
	}
	waitFor(t, "aurora_replica_status() on both instances", func() bool {
		ws, _ := replicaStatus(t, w)
		rs, _ := replicaStatus(t, r)
		return strings.Join(ws, ",") == strings.Join(want, ",") && strings.Join(rs, ",") == strings.Join(want, ",")
	})
	if v := queryText(t, w, "SELECT aurora_version()"); v != h.cfg.Database.EngineVersion {
		t.Errorf("aurora_version() = %s, want %s", v, h.cfg.Database.EngineVersion)
	}
}

// TestAuroraFunctionsAndFaults runs a prod twin under a writing client: Aurora's functions are
// right on the writer and the reader; a role outside rds_superuser can neither call
// aurora_inject_crash nor forge its request; stall-replication makes the reader's lag grow and
// then recover; drop-connections ends client sessions; hang-writer stops and resumes the
// postmaster; crash-reader restarts the reader; aurora_inject_crash('instance') by the master
// user fails over with no acknowledged write lost, and the functions follow the new roles.
func TestAuroraFunctionsAndFaults(t *testing.T) {
	h := upHA(t, "prod")
	ctx := apiCtx(t)
	c := h.client()
	h.startLoad(t, 100)
	old := h.writer(t)
	reader := h.sv.topo.now().firstReader()
	h.checkTopology(t, old.Name, reader)

	// A role that is not in rds_superuser.
	master := mustConnect(t, h.twin, h.cfg.Database.Port)
	if _, err := master.Exec(ctx, "CREATE ROLE chaos_tester LOGIN PASSWORD 'tester-pw-123'"); err != nil {
		t.Fatal(err)
	}
	cc := h.connConfig(t)
	cc.User, cc.Password = "chaos_tester", "tester-pw-123"
	tester, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		t.Fatal(err)
	}
	defer tester.Close(ctx)
	if _, err := tester.Exec(ctx, "SELECT aurora_inject_crash('instance')"); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("aurora_inject_crash by a non-admin role: %v, want permission denied", err)
	}
	// Forging the request by hand: the supervisor checks the session's role and refuses.
	if _, err := tester.Exec(ctx, "SET application_name = 'apgstack-inject crash instance'"); err != nil {
		t.Fatal(err)
	}
	if _, err := tester.Exec(ctx, "SELECT pg_advisory_lock($1, pg_backend_pid())", injectRequest); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the forged request refused", func() bool {
		var n int
		err := tester.QueryRow(ctx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND objid = pg_backend_pid() AND granted", injectDenied).Scan(&n)
		return err == nil && n == 1
	})
	if w := h.writer(t); w.Name != old.Name || w.PID != old.PID {
		t.Fatalf("a forged request changed the writer: %+v, was %+v", w, old)
	}
	tester.Close(ctx)

	// stall-replication: the lag seen on the writer grows past a second, then goes back to 0.
	res, err := c.Chaos(ctx, api.ChaosRequest{Fault: api.ChaosStallReplication, For: 4 * time.Second})
	if err != nil || res.Instance != reader {
		t.Fatalf("stall-replication: %+v, %v", res, err)
	}
	w := mustConnect(t, h.twin, h.cfg.Database.Port)
	lagOf := func() float32 {
		_, lag := replicaStatus(t, w)
		if l := lag[reader]; l != nil {
			return *l
		}
		return -1
	}
	waitFor(t, "the replica lag above 1 s", func() bool { return lagOf() > 1000 })
	waitFor(t, "the replica lag back to 0", func() bool { return lagOf() == 0 })

	// aurora_inject_replica_failure through the reader endpoint: the request crosses a hot
	// standby (advisory lock, answer lock) and stalls that reader's replication.
	rc := mustConnect(t, h.twin, h.cfg.ReaderPort())
	if got := queryText(t, rc, fmt.Sprintf("SELECT aurora_inject_replica_failure(100, 2, '%s')", reader)); got != "Success" {
		t.Errorf("aurora_inject_replica_failure = %q", got)
	}
	if _, err := rc.Exec(ctx, "SELECT aurora_inject_replica_failure(100, 2, 'nosuch')"); err == nil || !strings.Contains(err.Error(), "fault injection failed") {
		t.Errorf("aurora_inject_replica_failure of an unknown replica: %v", err)
	}
	if _, err := rc.Exec(ctx, "SELECT aurora_inject_disk_failure(10, 0, true, 5)"); err == nil || !strings.Contains(err.Error(), "not simulated") {
		t.Errorf("aurora_inject_disk_failure: %v, want not simulated", err)
	}
	waitFor(t, "the replica lag back to 0 after the SQL stall", func() bool { return lagOf() == 0 })

	// drop-connections ends the client sessions.
	victim := mustConnect(t, h.twin, h.cfg.Database.Port)
	res, err = c.Chaos(ctx, api.ChaosRequest{Fault: api.ChaosDropConnections})
	if err != nil || res.Terminated < 1 {
		t.Fatalf("drop-connections: %+v, %v", res, err)
	}
	if err := victim.Ping(ctx); err == nil {
		t.Error("a client session survived drop-connections")
	}

	// hang-writer for 1 s (below the health check's limit): the postmaster is stopped, then runs again (no failover for so short).
	res, err = c.Chaos(ctx, api.ChaosRequest{Fault: api.ChaosHangWriter, For: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// The stop takes effect when the postmaster is next scheduled (a busy machine: later).
	stopped := false
	for deadline := time.Now().Add(900 * time.Millisecond); !stopped && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		stopped = processStoppedNow(old.PID)
	}
	if !stopped {
		t.Errorf("hang-writer: the postmaster %d was not seen stopped: %+v", old.PID, res)
	}
	waitFor(t, "the postmaster resumed", func() bool { return !processStoppedNow(old.PID) })

	// crash-reader: the reader's postmaster is killed and the reader comes back.
	var readerPID int
	for _, in := range h.sv.Status(ctx).Instances {
		if in.Name == reader {
			readerPID = in.PID
		}
	}
	if _, err := c.Chaos(ctx, api.ChaosRequest{Fault: api.ChaosCrashReader}); err != nil {
		t.Fatal(err)
	}
	if !gone(readerPID, 10*time.Second) {
		t.Fatal("crash-reader: the reader's postmaster still runs")
	}
	h.waitCluster(t, 2)

	// aurora_inject_crash('instance') by the master user through the writer endpoint.
	h.moreWrites(t, 50)
	m := mustConnect(t, h.twin, h.cfg.Database.Port)
	if _, err := m.Exec(ctx, "SELECT aurora_inject_crash('instance')"); err == nil {
		t.Error("aurora_inject_crash returned: its session should end with the crash")
	}
	if !gone(old.PID, 20*time.Second) {
		t.Fatal("aurora_inject_crash: the writer's postmaster still runs")
	}
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := h.load.WaitRecovered(rctx, 1); err != nil {
		t.Fatal(err)
	}
	h.moreWrites(t, 100)
	h.waitCluster(t, 2)
	nw := h.writer(t)
	if nw.Name == old.Name {
		t.Fatalf("writer still %s after aurora_inject_crash", old.Name)
	}
	h.checkTopology(t, nw.Name, old.Name)
	h.finish(t, 2)
	events := h.events(t)

	// After a restart the functions are there again and follow the roles kept.
	h.down()
	tw := up(t, h.cfg, h.dir)
	h2 := &haTwin{twin: tw, sv: <-tw.sv}
	h2.waitCluster(t, 2)
	h2.checkTopology(t, nw.Name, old.Name)
	wantEvents(t, events, "fault injected by role "+h.cfg.Database.Username+" (SQL): crash-writer",
		"fault injection refused: role chaos_tester is not a member of rds_superuser",
		"fault injected by apgstack chaos: stall-replication",
		"fault injected by role "+h.cfg.Database.Username+" (SQL): stall-replication")
}

// processStoppedNow reads the process's state in /proc: T is stopped by a signal.
func processStoppedNow(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(data), ')')
	return i > 0 && i+2 < len(data) && (data[i+2] == 'T' || data[i+2] == 't')
}
