package twin

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestInterruptedUpIsRedone interrupts `up` of a prod twin (Ctrl-C: SIGINT) at each of its
// steps: the moment `up` reports the step (creating the certificates, initdb, the writer's start,
// the master user, the bootstrap, the reader's base backup, its start, synchronous replication),
// so that the interrupt falls in it. Each time no process of the interrupted run is left behind,
// and the next `up` brings a healthy twin with a synchronous reader.
func TestInterruptedUpIsRedone(t *testing.T) {
	tw := newBinTwin(t, "--set", "environment.stage=prod")
	work, bin := tw.work, tw.bin
	for i, step := range []string{
		"creating the TLS certificate authority",
		"creating the writer",
		"starting the writer",
		"creating the master user",
		"bootstrap:",
		"creating the reader",
		"starting the reader",
		"synchronous replication to",
	} {
		stateDir := filepath.Join(work, fmt.Sprintf("s-%d", i))
		with := tw.with("--state-dir", stateDir)
		t.Cleanup(func() { cli(t, work, bin, append([]string{"down", "--skip-final-snapshot"}, with...)...) })

		cmd := exec.Command(bin, append([]string{"up"}, with...)...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "NO_COLOR=1")
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var said strings.Builder
		seen := false
		lines := bufio.NewScanner(stderr)
		for lines.Scan() {
			said.WriteString(lines.Text() + "\n")
			if !seen && strings.Contains(lines.Text(), step) {
				seen = true
				_ = cmd.Process.Signal(syscall.SIGINT)
			}
		}
		_ = cmd.Wait()
		if !seen {
			t.Errorf("up never reported the step %q:\n%s", step, said.String())
		}
		// Whatever the interrupted up had started is gone once it has returned.
		if left := processesOf(stateDir); len(left) > 0 && cmd.ProcessState.ExitCode() != 0 {
			t.Errorf("interrupted at %q: processes left: %v\n%s", step, left, said.String())
		}
		if _, e, code := cli(t, work, bin, append([]string{"up"}, with...)...); code != 0 {
			t.Fatalf("up after an interrupt at %q: exit %d\n%s\n(the interrupted run said:\n%s)", step, code, e, said.String())
		}
		out, e, code := cli(t, work, bin, append([]string{"psql"}, append(with, "--", "-Atc", "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'")...)...)
		if code != 0 || strings.TrimSpace(out) != "1" {
			t.Errorf("after an interrupt at %q: the writer has %q synchronous readers, exit %d\n%s", step, out, code, e)
		}
		cli(t, work, bin, append([]string{"down", "--skip-final-snapshot"}, with...)...)
	}
}

// processesOf lists the command lines of the processes that name stateDir.
func processesOf(stateDir string) []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if data, err := os.ReadFile(p); err == nil && bytes.Contains(data, []byte(stateDir)) {
			out = append(out, string(bytes.ReplaceAll(data, []byte{0}, []byte{' '})))
		}
	}
	return out
}
