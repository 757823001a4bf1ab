package twin

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/internal/twin/api"
)

// TestUpIsAnUpdate drives day two through the binary: a dev twin becomes prod (a reader is added)
// and dev again (the reader removed), its writer endpoint moves to another port, and a change
// that cannot be applied is refused; after each step psql works with the configuration as given
// and with the state directory alone, and every row written before is still there.
func TestUpIsAnUpdate(t *testing.T) {
	tw := newBinTwin(t)
	base, with, stateDir, mustOK := tw.sets, tw.with, tw.stateDir, tw.mustCLI
	rows := 0
	write := func(args ...string) {
		t.Helper()
		rows++
		mustOK(append(args, "psql", "--", "-Atc", "CREATE TABLE IF NOT EXISTS dayTwo (n int); INSERT INTO dayTwo VALUES ("+strconv.Itoa(rows)+")")...)
	}
	count := func(args ...string) {
		t.Helper()
		out, _ := mustOK(append(args, "psql", "--", "-Atc", "SELECT count(*) FROM dayTwo")...)
		if strings.TrimSpace(out) != strconv.Itoa(rows) {
			t.Errorf("%v: %s rows, want %d (an acknowledged write was lost)", args, strings.TrimSpace(out), rows)
		}
	}
	instances := func() int {
		t.Helper()
		out, _ := mustOK("status", "-o", "json", "--state-dir", stateDir)
		var st api.Status
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatal(err)
		}
		return len(st.Instances)
	}

	mustOK(with("up")...)
	write(base...)

	// The plan, and nothing changed by a dry run or without confirmation.
	prod := with("--set", "environment.stage=prod")
	_, plan := mustOK(append(prod, "up", "--dry-run")...)
	for _, want := range []string{"environment.stage", "dev -> prod", "adds a reader", "prod/aurora-pg/", "nothing was changed"} {
		if !strings.Contains(plan, want) {
			t.Errorf("dry-run plan lacks %q:\n%s", want, plan)
		}
	}
	if _, errOut, code := tw.cli(append(prod, "up")...); code != 3 || !strings.Contains(errOut, "--yes") {
		t.Errorf("up without confirmation and no terminal: exit %d, want 3\n%s", code, errOut)
	}
	if n := instances(); n != 1 {
		t.Fatalf("the twin changed before confirmation: %d instances", n)
	}

	// dev -> prod: a synchronous reader; the master login works under the new secret name.
	mustOK(append(prod, "up", "--yes")...)
	if n := instances(); n != 2 {
		t.Fatalf("after dev -> prod: %d instances, want 2", n)
	}
	count(prod...)
	write(prod...)
	count("--state-dir", stateDir) // the twin's own record: no --set needed
	out, _ := mustOK(append(prod, "psql", "--reader", "--", "-Atc", "SELECT pg_is_in_recovery()")...)
	if strings.TrimSpace(out) != "t" {
		t.Errorf("psql --reader after dev -> prod reached %q, want the reader", out)
	}
	_, note, _ := tw.cli(append(base, "status")...)
	if !strings.Contains(note, "does not run with yet") || !strings.Contains(note, "environment.stage prod -> dev") {
		t.Errorf("status with a configuration the twin does not run: no note of the difference\n%s", note)
	}
	if old := filepath.Join(stateDir, "secrets", "dev"); dirHasFiles(old) {
		t.Errorf("the dev secrets are still there after the update")
	}

	// prod -> dev: the reader goes, every acknowledged write stays.
	mustOK(with("up", "--yes")...)
	if n := instances(); n != 1 {
		t.Fatalf("after prod -> dev: %d instances, want 1", n)
	}
	count(base...)
	write(base...)
	count(base...)

	// The writer endpoint moves.
	newPort := freePort(t)
	moved := []string{"--set", "database.port=" + strconv.Itoa(newPort), "--set", "target.local.readerPort=" + strconv.Itoa(tw.readerPort)}
	_, plan = mustOK(append(moved, "up", "--yes")...)
	if !strings.Contains(plan, "database.port "+strconv.Itoa(tw.port)+" -> "+strconv.Itoa(newPort)) || !strings.Contains(plan, "the endpoint moves") {
		t.Errorf("port change plan:\n%s", plan)
	}
	count(moved...)
	count("--state-dir", stateDir)

	// A change existing data cannot take is refused before anything is touched.
	_, errOut, code := tw.cli(append(moved, "--set", "database.name=other", "up", "--yes")...)
	if code != 2 || !strings.Contains(errOut, "refused") || !strings.Contains(errOut, "restore") {
		t.Errorf("database.name change: exit %d, want 2 with the way forward\n%s", code, errOut)
	}
	count(moved...)
}

func dirHasFiles(dir string) bool {
	found := false
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		found = found || err == nil && !d.IsDir()
		return nil
	})
	return found
}

// TestNoTwinNoPretending: the read commands in a directory without a twin say so (exit 1) and
// create nothing.
func TestNoTwinNoPretending(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	work, bin := buildBinary(t)
	empty := filepath.Join(work, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"status"}, {"outputs"}, {"psql", "--", "-c", "select 1"}, {"events"}, {"status", "-o", "json"}} {
		out, errOut, code := cli(t, work, bin, append([]string{args[0], "--state-dir", empty}, args[1:]...)...)
		if code != 1 || !strings.Contains(errOut, "no twin in "+empty+" (apgstack up creates one)") || out != "" {
			t.Errorf("%v: exit %d, stdout %q\n%s", args, code, out, errOut)
		}
	}
	// The default state directory is not created either.
	if _, _, code := cli(t, work, bin, "status"); code != 1 {
		t.Errorf("status in a working directory without a twin: exit %d", code)
	}
	entries, _ := os.ReadDir(empty)
	if _, err := os.Lstat(filepath.Join(work, ".apgstack")); err == nil || len(entries) != 0 {
		t.Errorf("a read command created state: .apgstack %v, %v in the empty directory", err, entries)
	}
}

// TestRestoredTwinStandsAlone: a twin restored with --no-start starts and holds its data after
// its source, with its state directory and backup repository, is deleted; and every command
// finds it with --state-dir alone.
func TestRestoredTwinStandsAlone(t *testing.T) {
	tw := newBinTwin(t)
	base, source, mustOK := tw.sets, tw.stateDir, tw.mustCLI
	restored := filepath.Join(tw.work, "r1")
	t.Cleanup(func() { tw.cli("down", "--skip-final-snapshot", "--state-dir", restored) })
	mustOK(append(base, "up")...)
	mustOK(append(base, "psql", "--", "-Atc", "CREATE TABLE kept (n int); INSERT INTO kept SELECT generate_series(1, 100)")...)
	mustOK(append(base, "backup", "--type", "full")...)
	mustOK(append(base, "psql", "--", "-Atc", "INSERT INTO kept SELECT generate_series(101, 150)")...)

	rPort, rReader := freePort(t), freePort(t)
	mustOK(append(base, "restore", "--to-time", "latest", "--name", "r1", "--new-state-dir", restored, "--no-start",
		"--port", strconv.Itoa(rPort), "--reader-port", strconv.Itoa(rReader))...)
	mustOK(append(base, "down", "--delete", "--yes", "--skip-final-snapshot")...)
	if _, err := os.Stat(source); !os.IsNotExist(err) {
		t.Fatalf("the source is still there: %v", err)
	}

	// Started later, with nothing of its source left, it recovers from its own copy.
	mustOK("up", "--state-dir", restored, "--set", "database.stackName=r1", "--set", "database.port="+strconv.Itoa(rPort),
		"--set", "target.local.readerPort="+strconv.Itoa(rReader))
	out, _ := mustOK("psql", "--state-dir", restored, "--", "-Atc", "SELECT count(*) FROM kept")
	if strings.TrimSpace(out) != "150" {
		t.Errorf("the restored twin holds %s rows, want 150", strings.TrimSpace(out))
	}
	if _, err := os.Stat(filepath.Join(restored, "instances", "instance1", "restore-wal")); !os.IsNotExist(err) {
		t.Errorf("the WAL copied for recovery is still there after it: %v", err)
	}
	// Every command finds the restored twin by its state directory alone.
	for _, args := range [][]string{{"status"}, {"outputs"}, {"events"}, {"metrics"}, {"backup", "list"}} {
		out, errOut, code := tw.cli(append(args, "--state-dir", restored)...)
		if code != 0 || !strings.Contains(out, "r1") && args[0] != "metrics" && args[0] != "backup" {
			t.Errorf("%v --state-dir: exit %d\n%s\n%s", args, code, out, errOut)
		}
	}
	out, _ = mustOK("outputs", "-o", "json", "--state-dir", restored)
	if !strings.Contains(out, `"Port": "`+strconv.Itoa(rPort)+`"`) {
		t.Errorf("outputs of the restored twin do not name its own port %d:\n%s", rPort, out)
	}
}

// TestParameterChangesOnline: a dynamic parameter (pgaudit.log) is reloaded by the running twin
// with no restart; a static change (the engine's minor version) is shown as pending-reboot in
// status until `apgstack reboot` applies it, the writer restarting in place.
func TestParameterChangesOnline(t *testing.T) {
	tw := newBinTwin(t)
	base, with, mustOK := tw.sets, tw.with, tw.mustCLI
	status := func(args ...string) api.Status {
		t.Helper()
		out, _ := mustOK(append(args, "status", "-o", "json")...)
		var st api.Status
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	mustOK(with("up")...)
	pid := status(base...).Instances[0].PID

	audit := with("--set", "database.pgauditLog=all")
	_, errOut := mustOK(append(audit, "up")...) // no --yes: nothing restarts, nothing to confirm
	if !strings.Contains(errOut, "applied online: database.pgauditLog") {
		t.Errorf("up with a dynamic parameter changed:\n%s", errOut)
	}
	out, _ := mustOK(append(audit, "psql", "--", "-Atc", "SHOW pgaudit.log")...)
	if strings.TrimSpace(out) != "all" {
		t.Errorf("pgaudit.log = %q after the reload, want all", out)
	}
	if now := status(audit...).Instances[0].PID; now != pid {
		t.Errorf("the writer restarted (pid %d -> %d) for a dynamic parameter", pid, now)
	}

	minor := append(audit, "--set", "database.engineVersion=17.6")
	_, errOut = mustOK(append(minor, "up")...)
	if !strings.Contains(errOut, "pending-reboot: database.engineVersion") {
		t.Errorf("up with a minor version changed:\n%s", errOut)
	}
	st := status(minor...)
	if len(st.PendingReboot["instance1"]) != 1 || st.Instances[0].PID != pid {
		t.Fatalf("status after a static change: pending %v, writer pid %d (was %d)", st.PendingReboot, st.Instances[0].PID, pid)
	}
	out, _ = mustOK(append(minor, "reboot", "--yes")...)
	if !strings.Contains(out, "instance1 rebooted") || !strings.Contains(out, "applied: database.engineVersion") {
		t.Errorf("reboot:\n%s", out)
	}
	st = status(minor...)
	if len(st.PendingReboot) != 0 || st.Instances[0].PID == pid || st.Instances[0].State != api.StateRunning {
		t.Errorf("after reboot: pending %v, writer %+v", st.PendingReboot, st.Instances[0])
	}
	mustOK(append(minor, "psql", "--", "-Atc", "SELECT 1")...)
}

// A taken endpoint port is named with the setting and the ways to change it, before anything
// is created.
func TestPortInUseNamesTheFix(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().(*net.TCPAddr).Port
	cfg := apgstack.Default()
	cfg.Database.Port = taken
	err = checkPorts(cfg)
	for _, want := range []string{"database.port " + strconv.Itoa(taken) + " is in use", "--set database.port=", "APGSTACK_DATABASE_PORT=", "is free now"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("checkPorts = %v, want it to say %q", err, want)
		}
	}
	cfg.Database.Port, cfg.Target.Local.ReaderPort = freePort(t), taken
	if err := checkPorts(cfg); err == nil || !strings.Contains(err.Error(), "target.local.readerPort") {
		t.Errorf("reader port taken: %v", err)
	}
}
