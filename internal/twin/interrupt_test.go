package twin

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestInterruptedUpIsRedone interrupts `up` of a prod twin (Ctrl-C: SIGINT) at moments that fall
// in initdb, the certificates, the writer's start, the bootstrap, the reader's base backup and
// its start; each time the next `up` brings a healthy twin, and no process of the interrupted
// run is left behind.
func TestInterruptedUpIsRedone(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs PostgreSQL")
	}
	work, bin := buildBinary(t)
	port, readerPort := freePort(t), freePort(t)
	args := []string{"--set", "environment.stage=prod", "--set", "database.port=" + strconv.Itoa(port), "--set", "target.local.readerPort=" + strconv.Itoa(readerPort)}
	for _, after := range []time.Duration{200 * time.Millisecond, 700 * time.Millisecond, 1500 * time.Millisecond, 2500 * time.Millisecond, 4 * time.Second} {
		stateDir := filepath.Join(work, "s-"+after.String())
		with := append(append([]string{}, args...), "--state-dir", stateDir)
		t.Cleanup(func() { cli(t, work, bin, append([]string{"down", "--skip-final-snapshot"}, with...)...) })

		cmd := exec.Command(bin, append([]string{"up"}, with...)...)
		cmd.Dir = work
		var errOut bytes.Buffer
		cmd.Stderr = &errOut
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(after)
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
		// Whatever the interrupted up had started is gone once it has returned.
		if left := processesOf(stateDir); len(left) > 0 && cmd.ProcessState.ExitCode() != 0 {
			t.Errorf("interrupted after %s: processes left: %v\n%s", after, left, errOut.String())
		}
		if _, e, code := cli(t, work, bin, append([]string{"up"}, with...)...); code != 0 {
			t.Fatalf("up after an interrupt at %s: exit %d\n%s\n(the interrupted run said:\n%s)", after, code, e, errOut.String())
		}
		out, e, code := cli(t, work, bin, append([]string{"psql"}, append(with, "--", "-Atc", "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'")...)...)
		if code != 0 || strings.TrimSpace(out) != "1" {
			t.Errorf("after an interrupt at %s: the writer has %q synchronous readers, exit %d\n%s", after, out, code, e)
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
