package cli

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apgstack/apgstack/internal/twin/api"
)

// TestBinaryEngineVersionNoticeOnce drives the built binary with database.engineVersion on a
// major that is not installed (the default, 17.x, where only 15 is): init says in the file which
// major the twin runs on; up, status (running and stopped) and up --foreground each say the
// notice once.
func TestBinaryEngineVersionNoticeOnce(t *testing.T) {
	if _, err := os.Stat("/usr/lib/postgresql/17"); err == nil {
		t.Skip("PostgreSQL 17 is installed: no notice to count")
	}
	c := buildCLI(t)
	const notice = "the nearest installed major"
	c.sets = append(c.sets, "--set", "database.engineVersion=17.6")
	c.ok("init")
	data, err := os.ReadFile(filepath.Join(c.work, "apgstack.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "  # the local twin runs on PostgreSQL 15.") || !strings.Contains(string(data), "PostgreSQL 17 is not installed on this machine") {
		t.Fatalf("init does not say which major the twin runs on:\n%s", data)
	}
	count := func(what, out string) {
		t.Helper()
		if n := strings.Count(out, notice); n != 1 {
			t.Errorf("%s says the engine-version notice %d times, want once:\n%s", what, n, out)
		}
	}
	c.downAt(filepath.Join(c.work, ".apgstack"))
	stdout, stderr := c.ok("up")
	count("up", stdout+stderr)
	stdout, stderr = c.ok("status")
	count("status (running)", stdout+stderr)
	c.ok("down", "--skip-final-snapshot")
	stdout, stderr = c.ok("status")
	count("status (stopped)", stdout+stderr)

	// In the foreground the supervisor's log is on stderr and says it; up does not repeat it.
	cmd := c.command("up", "--foreground")
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sc := bufio.NewScanner(pipe)
	deadline := time.AfterFunc(2*time.Minute, func() { _ = cmd.Process.Kill() })
	defer deadline.Stop()
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "running in the foreground") {
			_ = cmd.Process.Signal(syscall.SIGINT)
		}
	}
	_ = cmd.Wait()
	if !strings.Contains(out.String(), "running in the foreground") {
		t.Fatalf("up --foreground did not reach ready:\n%s", out.String())
	}
	count("up --foreground", out.String())

	// A minor upgrade within the configured major stays an update of the twin on the nearest
	// installed major (no pg_upgrade, whose target major is not installed).
	_, stderr = c.ok("upgrade", "--engine-version", "17.7", "--yes")
	count("upgrade to 17.7", stderr)
	stdout, _ = c.ok("status", "-o", "json")
	var st api.Status
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatal(err)
	}
	if st.Phase != api.PhaseReady || st.EngineVersion != "17.7" || !strings.HasPrefix(st.ServerVersion, "15.") {
		t.Errorf("after the minor upgrade: %s, engine %s on PostgreSQL %s; want ready, 17.7 on 15", st.Phase, st.EngineVersion, st.ServerVersion)
	}
}

// TestBinaryMissingOSUserNamed: up with a target.local.osUser that does not exist names that
// account, the accounts that do, and changes nothing.
func TestBinaryMissingOSUserNamed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root switches accounts")
	}
	c := buildCLI(t)
	dir := filepath.Join(c.work, "state")
	code, _, stderr := c.try("up", "--set", "target.local.osUser=apgstack-nobody-here", "--state-dir", dir)
	if code == 0 {
		t.Fatal("up with a missing osUser succeeded")
	}
	if !strings.Contains(stderr, `target.local.osUser "apgstack-nobody-here": no such account on this machine`) || !strings.Contains(stderr, "existing: ") {
		t.Errorf("error does not name the account tried and those that exist:\n%s", stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "state.json")); err == nil {
		t.Errorf("up made a twin in %s despite the refusal", dir)
	}
}
