package twin

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/apgstack/apgstack/internal/twin/instance"
	"github.com/apgstack/apgstack/internal/twin/statedir"
)

// systemID is the cluster's identity in pg_control: pg_upgrade makes a new cluster, with a new one.
func controlSystemID(t *testing.T, bin instance.Binaries, dataDir string) string {
	t.Helper()
	out, err := exec.Command(bin.Path("pg_controldata"), "-D", dataDir).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_controldata %s: %v\n%s", dataDir, err, out)
	}
	m := regexp.MustCompile(`Database system identifier:\s+(\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("pg_controldata %s: no system identifier\n%s", dataDir, out)
	}
	return string(m[1])
}

// keptTwin15 is the twin both upgrade tests start from: pre-prod (a writer and a reader) on the
// installed major 15, with 1000 rows in table kept and a backup (so that the upgrade must tell the
// stanza of the new cluster), stopped. The test is skipped without PostgreSQL 15.
func keptTwin15(t *testing.T) (*binTwin, instance.Binaries) {
	t.Helper()
	if testing.Short() { // skip before the search for PostgreSQL 15
		t.Skip("builds the binary and runs PostgreSQL")
	}
	bin15, _, err := instance.FindBinaries(context.Background(), 15, true)
	if err != nil {
		t.Skip(err)
	}
	tw := newBinTwin(t, "--set", "environment.stage=pre-prod", "--set", "database.engineVersion=15.15")
	tw.mustRun("up")
	tw.mustRun("psql", "--", "-Atc", "CREATE TABLE kept AS SELECT g AS n FROM generate_series(1, 1000) g")
	tw.mustRun("backup")
	tw.mustRun("down", "--skip-final-snapshot")
	return tw, bin15
}

// TestMajorUpgradeMachinery runs the local major upgrade on a real pre-prod twin (writer and
// streaming reader) with the only installed major, 15 -> 15 (pg_upgrade accepts an equal major),
// so that every step is real: the twin stopped, pg_upgrade --check and the copying pg_upgrade into a new data
// directory, the configuration carried over, the old data directories kept, the start of the
// upgraded cluster with the reader recreated from it by base backup, the rows on both endpoints,
// a backup into the same repository (stanza-upgrade), the old directories deleted on demand, and
// a second upgrade with --link (hard links; the kept old cluster disabled by pg_upgrade).
func TestMajorUpgradeMachinery(t *testing.T) {
	ctx := context.Background()
	tw, bin15 := keptTwin15(t)
	stateDir := tw.stateDir
	// stdout alone, the command having succeeded.
	run := func(args ...string) string {
		t.Helper()
		out, _ := tw.mustRun(args...)
		return out
	}

	rec, ok, err := Recorded(stateDir)
	if err != nil || !ok {
		t.Fatalf("recorded configuration: %v %v", ok, err)
	}
	plan, err := PlanMajorUpgrade(ctx, stateDir, rec)
	if err != nil {
		t.Fatal(err)
	}
	if plan.From != 15 || plan.To != 15 || plan.Needed() || plan.Writer != "instance1" || len(plan.Readers) != 1 {
		t.Fatalf("plan %+v", plan)
	}
	l := statedir.Layout{Root: stateDir}
	before := controlSystemID(t, bin15, l.DataDir(plan.Writer))
	var progress bytes.Buffer
	res, err := UpgradeData(ctx, MajorUpgrade{StateDir: stateDir, Config: rec, Plan: &plan, Progress: &progress})
	if err != nil {
		t.Fatalf("upgrade: %v\n%s", err, progress.String())
	}
	for _, want := range []string{"pg_upgrade --check", "copying the files", "base backup", "stanza-upgrade"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress does not mention %q:\n%s", want, progress.String())
		}
	}
	if len(res.Kept) != 2 {
		t.Fatalf("kept %v, want the writer's and the reader's old data directories", res.Kept)
	}
	if got := controlSystemID(t, bin15, res.Kept[0]); got != before {
		t.Errorf("the kept writer directory is not the old cluster: system id %s, was %s", got, before)
	}
	if after := controlSystemID(t, bin15, l.DataDir(plan.Writer)); after == before {
		t.Errorf("the writer's data directory is still the old cluster (system id %s)", after)
	}
	for _, name := range []string{"postgresql.conf", "pg_hba.conf", "pg_ident.conf", "postgresql.auto.conf"} {
		old, err1 := os.ReadFile(filepath.Join(res.Kept[0], name))
		carried, err2 := os.ReadFile(filepath.Join(l.DataDir(plan.Writer), name))
		if err1 != nil || err2 != nil || !bytes.Equal(old, carried) {
			t.Errorf("%s not carried over to the new data directory: %v %v", name, err1, err2)
		}
	}
	if _, err := os.Stat(l.DataDir(plan.Readers[0])); !os.IsNotExist(err) {
		t.Errorf("the reader's old data directory is still in place: %v", err)
	}

	run("up")
	if got := strings.TrimSpace(run("psql", "--", "-Atc", "SELECT count(*) FROM kept")); got != "1000" {
		t.Errorf("writer after the upgrade: %q rows, want 1000", got)
	}
	if got := strings.TrimSpace(run("psql", "--reader", "--", "-Atc", "SELECT count(*) FROM kept")); got != "1000" {
		t.Errorf("reader after the upgrade: %q rows, want 1000", got)
	}
	if out := run("status"); !strings.Contains(out, "instance2  reader  running") {
		t.Errorf("the reader does not run after the upgrade:\n%s", out)
	}
	run("backup") // the repository took the new cluster (stanza-upgrade)

	deleted, err := DeleteOldData(stateDir)
	if err != nil || len(deleted) != 2 {
		t.Fatalf("delete old data: %v %v", deleted, err)
	}
	if left, _ := OldData(stateDir); len(left) != 0 {
		t.Errorf("old data directories left: %v", left)
	}

	// Again with --link: no copy; pg_upgrade disables the old cluster, which is kept all the same.
	run("down", "--skip-final-snapshot")
	progress.Reset()
	res, err = UpgradeData(ctx, MajorUpgrade{StateDir: stateDir, Config: rec, Plan: &plan, Progress: &progress, Link: true})
	if err != nil {
		t.Fatalf("upgrade --link: %v\n%s", err, progress.String())
	}
	if !strings.Contains(progress.String(), "hard-linking the files") || len(res.Kept) == 0 || !disabled(res.Kept[0]) {
		t.Errorf("upgrade --link: kept %v (the old writer should be disabled by pg_upgrade --link)\n%s", res.Kept, progress.String())
	}
	run("up")
	if got := strings.TrimSpace(run("psql", "--reader", "--", "-Atc", "SELECT count(*) FROM kept")); got != "1000" {
		t.Errorf("reader after the linked upgrade: %q rows, want 1000", got)
	}
}

// TestMajorUpgradeSurvivesACrash interrupts the local major upgrade (15 -> 15) as a crash would,
// on a real pre-prod twin: after pg_upgrade --link disabled the old cluster (it is enabled again
// and the upgrade made anew); once the upgraded cluster is complete
// and the readers set aside, but before the exchange (the twin then starts on its old cluster and
// takes writes, so the upgraded copy is stale and must be made again, not used), and right after
// the exchange (the upgrade is finished, not redone). No row is lost on either endpoint, and
// backups go on.
func TestMajorUpgradeSurvivesACrash(t *testing.T) {
	ctx := context.Background()
	tw, bin15 := keptTwin15(t)
	stateDir, run := tw.stateDir, tw.mustRun
	count := func(endpoint ...string) string {
		t.Helper()
		out, _ := run(append(append([]string{"psql"}, endpoint...), "--", "-Atc", "SELECT count(*) FROM kept")...)
		return strings.TrimSpace(out)
	}
	rec, _, err := Recorded(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := PlanMajorUpgrade(ctx, stateDir, rec)
	if err != nil {
		t.Fatal(err)
	}
	l := statedir.Layout{Root: stateDir}
	oldID := controlSystemID(t, bin15, l.DataDir(plan.Writer))
	upgrade := func(stopAfter string) (MajorResult, string, error) {
		var progress bytes.Buffer
		res, err := UpgradeData(ctx, MajorUpgrade{StateDir: stateDir, Config: rec, Plan: &plan, Progress: &progress, stopAfter: stopAfter})
		return res, progress.String(), err
	}

	// Crash 0: pg_upgrade --link done (the old cluster disabled), the new cluster not yet marked
	// complete. The next attempt enables the old cluster again and upgrades anew.
	var progress0 bytes.Buffer
	if _, err := UpgradeData(ctx, MajorUpgrade{StateDir: stateDir, Config: rec, Plan: &plan, Progress: &progress0, Link: true, stopAfter: "pg_upgrade"}); err != errStopped {
		t.Fatalf("linked upgrade: %v, want the test crash\n%s", err, progress0.String())
	}
	if !disabled(l.DataDir(plan.Writer)) || !PendingMajorUpgrade(stateDir) {
		t.Fatalf("after an interrupted pg_upgrade --link: old cluster disabled %v, pending %v; want both",
			disabled(l.DataDir(plan.Writer)), PendingMajorUpgrade(stateDir))
	}

	// Crash 1: before the exchange. The twin starts on its old cluster and takes writes.
	if _, progress, err := upgrade("readers"); err != errStopped {
		t.Fatalf("first upgrade: %v, want the test crash\n%s", err, progress)
	} else if !strings.Contains(progress, "enabled again") {
		t.Errorf("the old cluster disabled by pg_upgrade --link was not enabled again:\n%s", progress)
	}
	if !PendingMajorUpgrade(stateDir) {
		t.Fatal("the interrupted upgrade is not pending")
	}
	if id := controlSystemID(t, bin15, l.DataDir(plan.Writer)); id != oldID {
		t.Fatalf("the writer's data changed before the exchange: system id %s, was %s", id, oldID)
	}
	_, stderr := run("up")
	if !strings.Contains(stderr, "major upgrade of this twin was interrupted") {
		t.Errorf("up does not say that an upgrade was interrupted:\n%s", stderr)
	}
	run("psql", "--", "-Atc", "INSERT INTO kept SELECT g FROM generate_series(1001, 1500) g")
	if got := count("--reader"); got != "1500" {
		t.Errorf("reader rebuilt on the old cluster: %s rows, want 1500", got)
	}
	run("down", "--skip-final-snapshot")

	// Crash 2: right after the exchange of a new attempt, which must not use the stale copy.
	_, progress, err := upgrade("exchange")
	if err != errStopped {
		t.Fatalf("second upgrade: %v, want the test crash\n%s", err, progress)
	}
	if !strings.Contains(progress, "discarding an interrupted upgrade's copy") || !strings.Contains(progress, "pg_upgrade --check") {
		t.Errorf("the stale upgraded copy was not discarded and made again:\n%s", progress)
	}
	newID := controlSystemID(t, bin15, l.DataDir(plan.Writer))
	if newID == oldID {
		t.Fatal("the exchange did not put the upgraded cluster in place")
	}

	// Finishing: the resumed upgrade keeps the old cluster and leaves nothing half done.
	res, progress, err := upgrade("")
	if err != nil {
		t.Fatalf("finishing: %v\n%s", err, progress)
	}
	if !strings.Contains(progress, "finishing the upgrade a crash interrupted") || strings.Contains(progress, "pg_upgrade --check") {
		t.Errorf("the upgrade was not finished but redone:\n%s", progress)
	}
	if PendingMajorUpgrade(stateDir) {
		t.Error("the upgrade is still pending after it was finished")
	}
	if len(res.Kept) == 0 || controlSystemID(t, bin15, res.Kept[0]) != oldID {
		t.Errorf("the old cluster is not kept: %v", res.Kept)
	}
	if id := controlSystemID(t, bin15, l.DataDir(plan.Writer)); id != newID {
		t.Errorf("finishing changed the writer's data again: %s, want %s", id, newID)
	}
	run("up")
	if got := count(); got != "1500" {
		t.Errorf("writer after the upgrade: %s rows, want 1500", got)
	}
	if got := count("--reader"); got != "1500" {
		t.Errorf("reader after the upgrade: %s rows, want 1500", got)
	}
	run("backup")
}
