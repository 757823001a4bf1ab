package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/backup"
	"github.com/apgstack/apgstack/internal/twin/secretstore"
	"github.com/apgstack/apgstack/internal/twin/statedir"
)

// TestBinaryBackupRestoreSnapshot drives the real binary: up, backup, rows before and after a
// moment, restore --to-time into a new twin (rows before there, after not), metrics, events,
// snapshot create/list/delete, down with its final snapshot, and up of a new twin with
// database.snapshotName from that final snapshot.
func TestBinaryBackupRestoreSnapshot(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs PostgreSQL")
	}
	ctx := context.Background()
	bin := buildCLI(t)
	run := bin.ok
	stateDir := filepath.Join(bin.work, ".apgstack")
	pitrDir := stateDir + "-pitr"
	snapDir := filepath.Join(bin.work, "from-final")
	for _, d := range []string{stateDir, pitrDir, snapDir} {
		bin.downAt(d)
	}
	connect := func(out string) *pgx.Conn {
		t.Helper()
		var o api.Outputs
		if err := json.Unmarshal([]byte(out), &o); err != nil {
			t.Fatalf("outputs: %v\n%s", err, out)
		}
		store, err := secretstore.Open(statedir.Layout{Root: filepath.Dir(o.CABundle)}.SecretsDir())
		if err != nil {
			t.Fatal(err)
		}
		d, err := store.GetDatabase(o.SecretName, secretstore.Current)
		if err != nil {
			t.Fatal(err)
		}
		cc, err := pgx.ParseConfig("host=localhost port=" + o.Port + " dbname=" + o.DBName + " user=" + o.DBUsername + " sslmode=verify-full sslrootcert=" + o.CABundle)
		if err != nil {
			t.Fatal(err)
		}
		cc.Password = d.Password
		c, err := pgx.ConnectConfig(ctx, cc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		return c
	}
	ids := func(c *pgx.Conn) []int {
		t.Helper()
		rows, err := c.Query(ctx, "SELECT id FROM t ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		out, err := pgx.CollectRows(rows, pgx.RowTo[int])
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	out, _ := run("up", "-o", "json")
	src := connect(out)
	out, _ = run("backup", "--type", "full", "-o", "json")
	var info backup.Info
	if err := json.Unmarshal([]byte(out), &info); err != nil || len(info.Backups) == 0 {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	if _, err := src.Exec(ctx, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2)"); err != nil {
		t.Fatal(err)
	}
	var moment time.Time
	if err := src.QueryRow(ctx, "SELECT clock_timestamp()").Scan(&moment); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Exec(ctx, "INSERT INTO t VALUES (3)"); err != nil {
		t.Fatal(err)
	}

	// A moment before the first backup is bad input, refused before anything is said or made.
	before := bin.command("restore", "--to-time", time.Now().Add(-24*time.Hour).UTC().Format(time.RFC3339), "--name", "early")
	var beforeErr bytes.Buffer
	before.Stderr = &beforeErr
	if err := before.Run(); before.ProcessState.ExitCode() != ExitUsage || !strings.Contains(beforeErr.String(), "outside the recoverable window") || strings.Contains(beforeErr.String(), "restoring") {
		t.Errorf("restore before the window: %v\n%s", err, beforeErr.String())
	}
	if _, err := os.Stat(stateDir + "-early"); err == nil {
		t.Error("restore before the window created a state directory")
	}
	out, _ = run("restore", "--to-time", moment.UTC().Format(time.RFC3339Nano), "--name", "pitr", "-o", "json")
	if got := ids(connect(out)); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("restored rows %v, want [1 2]", got)
	}
	if got := ids(src); !slices.Equal(got, []int{1, 2, 3}) {
		t.Fatalf("source rows %v, want [1 2 3]", got)
	}
	out, _ = run("events", "--state-dir", pitrDir, "--source-type", "db-cluster", "-o", "json")
	if !strings.Contains(out, "cluster restored from apgstack-database") {
		t.Fatalf("no restore event in the restored twin:\n%s", out)
	}
	run("down", "--skip-final-snapshot", "--state-dir", pitrDir)

	out, _ = run("events", "--category", "notification", "-o", "json")
	var evs []api.Event
	if err := json.Unmarshal([]byte(out), &evs); err != nil || !slices.ContainsFunc(evs, func(e api.Event) bool {
		return strings.HasPrefix(e.Message, "full backup ") && strings.Contains(e.Message, " completed in ")
	}) {
		t.Fatalf("events: %v\n%s", err, out)
	}
	var rep api.MetricsReport
	for deadline := time.Now().Add(time.Minute); len(rep.Samples) == 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		out, _ = run("metrics", "-o", "json")
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("metrics: %v\n%s", err, out)
		}
	}
	if len(rep.Samples) == 0 || !strings.HasPrefix(rep.Endpoint, "http://127.0.0.1:") {
		t.Fatalf("metrics: %+v", rep)
	}
	resp, err := http.Get(rep.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `apgstack_free_local_storage_bytes{cluster="apgstack-database",instance="instance1",role="WRITER"}`) ||
		!strings.Contains(string(body), `apgstack_alarm_state{alarm="CPUAlarmWriter",cluster="apgstack-database",role="WRITER"} 0`) {
		t.Fatalf("Prometheus endpoint %s:\n%s", rep.Endpoint, body)
	}

	run("snapshot", "create", "manual-one")
	out, _ = run("snapshot", "list", "-o", "json")
	var snaps []backup.Snapshot
	if err := json.Unmarshal([]byte(out), &snaps); err != nil || len(snaps) != 1 || snaps[0].Name != "manual-one" {
		t.Fatalf("snapshot list: %v\n%s", err, out)
	}
	run("snapshot", "delete", "manual-one", "--yes")

	src.Close(ctx)
	_, errOut := run("down")
	final := regexp.MustCompile(`final snapshot (\S+) taken`).FindStringSubmatch(errOut)
	if final == nil {
		t.Fatalf("down took no final snapshot:\n%s", errOut)
	}
	out, _ = run("up", "--state-dir", snapDir, "--set", "database.snapshotName="+final[1], "-o", "json")
	if got := ids(connect(out)); !slices.Equal(got, []int{1, 2, 3}) {
		t.Fatalf("rows from the final snapshot %v, want [1 2 3]", got)
	}
	run("down", "--skip-final-snapshot", "--state-dir", snapDir)
	out, _ = run("snapshot", "list", "-o", "json")
	if err := json.Unmarshal([]byte(out), &snaps); err != nil || len(snaps) != 1 || snaps[0].Kind != "final" {
		t.Fatalf("snapshots after the test: %v\n%s", err, out)
	}
}
