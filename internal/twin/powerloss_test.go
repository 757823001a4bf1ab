package twin

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPowerLoss kills the supervisor and every server of a prod twin at once (kill -9, as a
// power cut would leave them), then runs up: every acknowledged write is back, and up and the
// events say what was recovered.
func TestPowerLoss(t *testing.T) {
	tw := newBinTwin(t, "--set", "environment.stage=prod")
	stateDir, mustOK := tw.stateDir, tw.mustRun
	mustOK("up")
	// Each statement is acknowledged before the next: 200 single-row commits.
	mustOK("psql", "--", "-Atc", "CREATE TABLE acked (n int)")
	mustOK("psql", "--", "-Atc", `DO $$ BEGIN FOR i IN 1..200 LOOP INSERT INTO acked VALUES (i); COMMIT; END LOOP; END $$`)

	var killed []int
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(data, []byte(stateDir)) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if pid != os.Getpid() && syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed = append(killed, pid)
		}
	}
	if len(killed) < 3 { // the supervisor and two postmasters at least
		t.Fatalf("killed %d processes of the twin, want the supervisor and both servers", len(killed))
	}
	// As after a power cut, nothing of them is left (not even a zombie not yet reaped).
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range killed {
		for time.Now().Before(deadline) {
			if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	_, errOut := mustOK("up")
	if !strings.Contains(errOut, "recovered after an unclean stop") || !strings.Contains(errOut, "crash recovery replayed") {
		t.Errorf("up does not say what it recovered:\n%s", errOut)
	}
	out, _ := mustOK("psql", "--", "-Atc", "SELECT count(*) FROM acked")
	if strings.TrimSpace(out) != "200" {
		t.Errorf("after the power loss: %s rows, want all 200 acknowledged", strings.TrimSpace(out))
	}
	events, _ := mustOK("events", "--category", "recovery")
	if !strings.Contains(events, "recovered from a crash") {
		t.Errorf("no recovery event of the instances:\n%s", events)
	}
}
