package twin

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apgstack/apgstack/internal/twin/api"
)

// TestLogsAndFollowedEvents: logs shows the supervisor's and the servers' logs, one instance's on
// request; events --follow streams an event as it happens.
func TestLogsAndFollowedEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs PostgreSQL")
	}
	work, bin := buildBinary(t)
	port, readerPort := freePort(t), freePort(t)
	base := []string{"--set", "database.port=" + strconv.Itoa(port), "--set", "target.local.readerPort=" + strconv.Itoa(readerPort)}
	stateDir := filepath.Join(work, ".apgstack")
	t.Cleanup(func() { cli(t, work, bin, "down", "--skip-final-snapshot", "--state-dir", stateDir) })
	mustCLI(t, work, bin, append(base, "up")...)

	out, _ := mustCLI(t, work, bin, append(base, "logs", "--since", "10m")...)
	if !strings.Contains(out, "supervisor: time=") || !strings.Contains(out, "instance1: ") {
		t.Errorf("logs without a filter lack a source:\n%.2000s", out)
	}
	out, _ = mustCLI(t, work, bin, append(base, "logs", "--instance", "instance1")...)
	if !strings.Contains(out, "database system is ready to accept connections") || strings.Contains(out, "instance1: ") {
		t.Errorf("logs --instance instance1:\n%.2000s", out)
	}
	if _, errOut, code := cli(t, work, bin, append(base, "logs", "--instance", "instance9")...); code != 2 || !strings.Contains(errOut, "instance1") {
		t.Errorf("logs of an unknown instance: exit %d\n%s", code, errOut)
	}

	follow := exec.Command(bin, append(base, "events", "--follow", "-o", "json", "--since", "1s")...)
	follow.Dir = work
	stdout, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = follow.Process.Kill(); _ = follow.Wait() })
	time.Sleep(500 * time.Millisecond)
	mustCLI(t, work, bin, append(base, "snapshot", "create", "followed")...)
	got := make(chan api.Event, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev api.Event
			if json.Unmarshal(sc.Bytes(), &ev) == nil && strings.Contains(ev.Message, "snapshot followed") {
				got <- ev
				return
			}
		}
	}()
	select {
	case ev := <-got:
		if ev.SourceType != "db-cluster" {
			t.Errorf("followed event %+v", ev)
		}
	case <-time.After(30 * time.Second):
		t.Error("events --follow did not print the snapshot's event")
	}
}
