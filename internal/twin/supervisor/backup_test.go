package supervisor

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/internal/testkit/notifytest"
	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/backup"
	"github.com/jackc/pgx/v5"
)

// upWith runs a supervisor in-process with monitoring options until the test ends.
func upWith(t *testing.T, cfg apgstack.Config, dir string, mon MonitoringOptions) *twin {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tw := &twin{cfg: cfg, dir: dir, cancel: cancel, done: make(chan error, 1)}
	ready := make(chan api.Status, 1)
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() {
		tw.done <- Run(ctx, Options{Config: cfg, StateDir: dir, Log: log, PollInterval: 200 * time.Millisecond, Monitoring: mon},
			func(st api.Status) { ready <- st })
	}()
	select {
	case tw.status = <-ready:
	case err := <-tw.done:
		cancel()
		t.Fatalf("supervisor failed: %v", err)
	}
	t.Cleanup(tw.down)
	return tw
}

// client is the twin's API client, as the CLI uses it.
func (tw *twin) client() *api.Client { return api.NewClient(Layout{Root: tw.dir}.Socket()) }

// ctx is a context for one API call of a test.
func apiCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func rowIDs(t *testing.T, c *pgx.Conn) []int {
	t.Helper()
	rows, err := c.Query(context.Background(), "SELECT id FROM t ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// waitFor polls cond until it holds; the bound only stops a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hasEvent(t *testing.T, dir, sourceType, sourceID, category, text string) bool {
	t.Helper()
	evs, err := ReadEvents(Layout{Root: dir})
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(evs, func(e api.Event) bool {
		return e.SourceType == sourceType && (sourceID == "" || e.SourceID == sourceID) && e.Category == category && strings.Contains(e.Message, text)
	})
}

// TestParameterChangeEvents restarts a twin with another pgaudit.log and finds the parameter
// group and instance configuration change events.
func TestParameterChangeEvents(t *testing.T) {
	cfg := testConfig(t, "dev")
	dir := stateDir(t)
	tw := upWith(t, cfg, dir, MonitoringOptions{})
	tw.down()
	if hasEvent(t, dir, bestpractice.SourceParameterGroup, "", "configuration change", "") {
		t.Fatal("configuration change reported at creation")
	}
	cfg.Database.PgauditLog = "ddl"
	tw = upWith(t, cfg, dir, MonitoringOptions{})
	if !hasEvent(t, dir, bestpractice.SourceParameterGroup, cfg.Database.StackName+"-instance-parameters", "configuration change", `pgaudit.log "ddl,role" -> "ddl"`) {
		t.Fatal("no parameter group configuration change event")
	}
	if !hasEvent(t, dir, bestpractice.SourceInstance, "instance1", "configuration change", "changed parameters") {
		t.Fatal("no instance configuration change event")
	}
	for _, e := range mustEvents(t, dir) {
		if !slices.Contains(bestpractice.EventCategories[e.SourceType], e.Category) {
			t.Errorf("event outside the subscribed categories: %+v", e)
		}
	}
	var got string
	if err := mustConnect(t, tw, cfg.Database.Port).QueryRow(context.Background(), "SHOW pgaudit.log").Scan(&got); err != nil || got != "ddl" {
		t.Fatalf("pgaudit.log %q, %v", got, err)
	}
}

func mustEvents(t *testing.T, dir string) []api.Event {
	t.Helper()
	evs, err := ReadEvents(Layout{Root: dir})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestAlarmNotifiesBySMTP runs a twin whose FreeLocalStorage threshold is above any disk, so the
// writer's alarm goes to ALARM after five (short) periods; the transition is an event and a mail
// to the NotificationList through a local SMTP server.
func TestAlarmNotifiesBySMTP(t *testing.T) {
	srv, err := notifytest.Start(0)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cfg := testConfig(t, "dev")
	cfg.Target.Local.SMTP = srv.Addr
	cfg.Environment.NotificationList = "dba@example.com"
	dir := stateDir(t)
	upWith(t, cfg, dir, MonitoringOptions{SampleInterval: 50 * time.Millisecond, AlarmPeriod: 50 * time.Millisecond,
		AlarmThresholds: map[string]float64{"FreeLocalStorage": 1e18}, NotifyBackoff: 10 * time.Millisecond})
	waitFor(t, "the alarm event", func() bool {
		return hasEvent(t, dir, bestpractice.SourceCluster, cfg.Database.StackName, "notification", "FreeLocalStorageAlarmWriter (WRITER role): OK -> ALARM")
	})
	waitFor(t, "the alarm mail", func() bool {
		return slices.ContainsFunc(srv.Messages(), func(m notifytest.Received) bool {
			return strings.Contains(m.Data, "FreeLocalStorageAlarmWriter") && strings.Contains(m.Data, "OK -> ALARM")
		})
	})
	for _, m := range srv.Messages() {
		if len(m.To) != 1 || m.To[0] != "dba@example.com" {
			t.Fatalf("mail to %v", m.To)
		}
		pw := (&twin{cfg: cfg, dir: dir}).masterPassword(t)
		if strings.Contains(m.Data, pw) {
			t.Fatal("a notification carries the master password")
		}
	}
}

// TestBackupsFollowFailover switches the writer of a pre-prod twin over to the reader and finds
// WAL archived and backups taken from the new writer, and a restore to the end of the archive
// (across the new timeline) holding every row.
func TestBackupsFollowFailover(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, "pre-prod")
	dir := stateDir(t)
	tw := upWith(t, cfg, dir, MonitoringOptions{})
	if _, err := tw.client().BackupNow(apiCtx(t), backup.Full); err != nil {
		t.Fatal(err)
	}
	c := mustConnect(t, tw, cfg.Database.Port)
	if _, err := c.Exec(ctx, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)

	cl := api.NewClient(Layout{Root: dir}.Socket())
	res, err := cl.Failover(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("failover: %+v", res)
	c = mustConnect(t, tw, cfg.Database.Port)
	var inRecovery bool
	var node string
	if err := c.QueryRow(ctx, "SELECT pg_is_in_recovery(), current_setting('cluster_name')").Scan(&inRecovery, &node); err != nil || inRecovery || node != secondInstance {
		t.Fatalf("writer endpoint after the switchover reaches %s (in recovery %v): %v", node, inRecovery, err)
	}
	if _, err := c.Exec(ctx, "INSERT INTO t VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	if !hasEvent(t, dir, bestpractice.SourceCluster, cfg.Database.StackName, "failover", "switchover completed") ||
		!hasEvent(t, dir, bestpractice.SourceInstance, secondInstance, "failover", "promoted to writer") {
		t.Fatalf("no failover events of the cluster and the promoted instance: %+v", mustEvents(t, dir))
	}
	for _, e := range mustEvents(t, dir) {
		if !slices.Contains(bestpractice.EventCategories[e.SourceType], e.Category) {
			t.Errorf("event outside the subscribed categories: %+v", e)
		}
	}
	if err := tw.client().ArchiveNow(apiCtx(t)); err != nil { // archive-push from the new writer's data directory
		t.Fatal(err)
	}
	var info backup.Info
	if info, err = tw.client().BackupNow(apiCtx(t), backup.Incr); err != nil {
		t.Fatal(err)
	}
	if n := len(info.Backups); n < 2 || info.Backups[n-1].Type != backup.Incr {
		t.Fatalf("backups after the switchover: %+v", info.Backups)
	}

	restored := filepath.Join(filepath.Dir(dir), "latest")
	if _, err := RestoreToTime(ctx, RestoreRequest{Config: cfg, SourceDir: dir, TargetDir: restored}); err != nil {
		t.Fatal(err)
	}
	rcfg := testConfig(t, "dev")
	rcfg.Database.StackName = "latest"
	r := upWith(t, rcfg, restored, MonitoringOptions{})
	if got := rowIDs(t, mustConnect(t, r, rcfg.Database.Port)); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("restored to the end of the archive: rows %v, want [1 2]", got)
	}
}

func TestInWindow(t *testing.T) {
	at := func(hm string) time.Time {
		tm, _ := time.Parse("2006-01-02 15:04", "2026-11-25 "+hm)
		return tm
	}
	for _, tc := range []struct {
		window, at string
		want       bool
	}{
		{bestpractice.BackupWindow, "03:00", true},
		{bestpractice.BackupWindow, "03:59", true},
		{bestpractice.BackupWindow, "04:00", false},
		{bestpractice.BackupWindow, "02:59", false},
		{"23:30-00:30", "00:10", true},
		{"23:30-00:30", "23:45", true},
		{"23:30-00:30", "12:00", false},
		{"nonsense", "12:00", true},
	} {
		if got := inWindow(at(tc.at), tc.window); got != tc.want {
			t.Errorf("inWindow(%s, %s) = %v", tc.at, tc.window, got)
		}
	}
}
