package cli

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apgstack/apgstack/internal/twin"
	"github.com/apgstack/apgstack/internal/twin/api"
)

// TestChaosCommand runs `apgstack chaos` against a real dev twin: bad input exits 2 naming the
// value and what is allowed, before anything is asked; crash-writer kills the writer and the
// supervisor restarts it in place (dev has no reader, so crash-reader is refused); and
// drop-connections reports what it ended.
func TestChaosCommand(t *testing.T) {
	dir, cfg, common := devProject(t)
	chaos := func(args ...string) (int, string, string) {
		return run(t, nil, append(append([]string{"chaos"}, args...), common...)...)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"melt"}, `chaos fault "melt": one of crash-writer, hang-writer, crash-reader, stall-replication, drop-connections allowed`},
		{[]string{"hang-writer"}, "chaos hang-writer: for 0s: a duration above 0"},
		{[]string{"crash-writer", "--for", "5s"}, "chaos crash-writer: for 5s: this fault takes no duration"},
	} {
		if code, _, stderr := chaos(tc.args...); code != ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("chaos %v: exit %d, %s; want exit 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
	if code, _, stderr := chaos("crash-writer"); code != ExitFailure || !strings.Contains(stderr, "no twin in") {
		t.Errorf("chaos without a twin: exit %d, %s", code, stderr)
	}

	ctx := supervise(t, twin.Options{Config: cfg, StateDir: dir, PollInterval: 200 * time.Millisecond})
	writerPID := func() int {
		st, err := twin.Client(dir).Status(ctx)
		if err != nil || len(st.Instances) != 1 || st.Instances[0].State != api.StateRunning {
			return 0
		}
		return st.Instances[0].PID
	}
	before := writerPID()
	code, stdout, stderr := chaos("crash-writer")
	if code != ExitOK || !strings.Contains(stdout, "crash-writer: postmaster "+strconv.Itoa(before)+" of writer instance1 killed") {
		t.Fatalf("chaos crash-writer: exit %d, %s %s", code, stdout, stderr)
	}
	deadline := time.Now().Add(time.Minute)
	for pid := writerPID(); pid == 0 || pid == before; pid = writerPID() {
		if time.Now().After(deadline) {
			t.Fatal("the writer did not come back after crash-writer")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, _, stderr := chaos("crash-reader"); code == ExitOK || !strings.Contains(stderr, "no reader") {
		t.Errorf("chaos crash-reader on dev: exit %d, %s", code, stderr)
	}
	code, stdout, stderr = chaos("drop-connections", "-o", "json")
	var res api.ChaosResult
	if code != ExitOK || json.Unmarshal([]byte(stdout), &res) != nil || res.Fault != api.ChaosDropConnections {
		t.Errorf("chaos drop-connections: exit %d, %s %s", code, stdout, stderr)
	}
}
