package twin

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apgstack/apgstack/internal/twin/api"
)

// TestDeadSupervisorIsReplaced kills the supervisor with kill -9, as a user might: its keeper
// starts a new one, which says what it recovered, and the twin serves through its endpoints again;
// down then leaves no process behind, the keeper included.
func TestDeadSupervisorIsReplaced(t *testing.T) {
	tw := newBinTwin(t)
	stateDir, run := tw.stateDir, tw.run
	status := func() api.Status {
		t.Helper()
		out, errOut, _ := run("status", "-o", "json")
		var st api.Status
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("status: %v\n%s%s", err, out, errOut)
		}
		return st
	}
	if _, errOut, code := run("up"); code != 0 {
		t.Fatalf("up: exit %d\n%s", code, errOut)
	}
	first := status()
	if first.Phase != api.PhaseReady || first.PID == 0 {
		t.Fatalf("status after up: %+v", first)
	}
	if err := syscall.Kill(first.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var now api.Status
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if now = status(); now.Phase == api.PhaseReady && now.PID != first.PID {
			break
		}
	}
	if now.Phase != api.PhaseReady || now.PID == first.PID {
		t.Fatalf("no new supervisor within a minute: %+v", now)
	}
	if out, _, code := run("psql", "--", "-Atc", "SELECT 1"); code != 0 || strings.TrimSpace(out) != "1" {
		t.Errorf("psql through the endpoint after the restart: exit %d, %q", code, out)
	}
	events, _, _ := run("events")
	if !strings.Contains(events, "recovered after an unclean stop") || !strings.Contains(events, "pid "+strconv.Itoa(first.PID)) {
		t.Errorf("no event of the supervisor's death and recovery:\n%s", events)
	}
	if _, errOut, code := run("down", "--skip-final-snapshot"); code != 0 {
		t.Fatalf("down: exit %d\n%s", code, errOut)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if data, err := os.ReadFile(p); err == nil && bytes.Contains(data, []byte(stateDir)) {
			t.Errorf("process left after down: %s", bytes.ReplaceAll(data, []byte{0}, []byte{' '}))
		}
	}
}
