package twin

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/apgstack/apgstack/internal/twin/api"
)

// TestLogsAndFollowedEvents: logs shows the supervisor's and the servers' logs, one instance's on
// request; events --follow streams an event as it happens.
func TestLogsAndFollowedEvents(t *testing.T) {
	tw := newBinTwin(t)
	tw.mustRun("up")

	out, _ := tw.mustRun("logs", "--since", "10m")
	if !strings.Contains(out, "supervisor: time=") || !strings.Contains(out, "instance1: ") {
		t.Errorf("logs without a filter lack a source:\n%.2000s", out)
	}
	out, _ = tw.mustRun("logs", "--instance", "instance1")
	if !strings.Contains(out, "database system is ready to accept connections") || strings.Contains(out, "instance1: ") {
		t.Errorf("logs --instance instance1:\n%.2000s", out)
	}
	if _, errOut, code := tw.run("logs", "--instance", "instance9"); code != 2 || !strings.Contains(errOut, "instance1") {
		t.Errorf("logs of an unknown instance: exit %d\n%s", code, errOut)
	}

	follow := exec.Command(tw.bin, tw.with("events", "--follow", "-o", "json", "--since", "1s")...)
	follow.Dir = tw.work
	stdout, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = follow.Process.Kill(); _ = follow.Wait() })
	time.Sleep(500 * time.Millisecond)
	tw.mustRun("snapshot", "create", "followed")
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
