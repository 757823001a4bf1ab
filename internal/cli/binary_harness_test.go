package cli

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apgstack/apgstack/internal/testkit/pgtest"
)

// cliBinary is the built apgstack program in a work directory the postgres account can reach,
// with the endpoint ports chosen at run time (passed as --set on every call).
type cliBinary struct {
	t    *testing.T
	bin  string
	work string
	sets []string
	env  []string
}

// buildCLI builds cmd/apgstack into a fresh world-readable work directory; the caller's
// twins are stopped at cleanup by downAt.
func buildCLI(t *testing.T) *cliBinary {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	work := pgtest.ReachableDir(t, "cli-bin")
	bin := filepath.Join(work, "apgstack")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/apgstack/apgstack/cmd/apgstack").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	port, _ := freeLoopbackPort()
	readerPort, _ := freeLoopbackPort()
	return &cliBinary{t: t, bin: bin, work: work, env: append(os.Environ(), "NO_COLOR=1"),
		sets: []string{"--set", "database.port=" + strconv.Itoa(port), "--set", "target.local.readerPort=" + strconv.Itoa(readerPort)}}
}

// command is the program with the run-time ports and args, in the work directory.
func (c *cliBinary) command(args ...string) *exec.Cmd {
	cmd := exec.Command(c.bin, append(append([]string{}, c.sets...), args...)...)
	cmd.Dir, cmd.Env = c.work, c.env
	return cmd
}

// try runs the program and returns its exit code, stdout and stderr.
func (c *cliBinary) try(args ...string) (int, string, string) {
	c.t.Helper()
	cmd := c.command(args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	case err != nil:
		c.t.Fatalf("apgstack %s: %v", strings.Join(args, " "), err)
	}
	return 0, stdout.String(), stderr.String()
}

// ok runs the program and fails the test unless it exits 0.
func (c *cliBinary) ok(args ...string) (string, string) {
	c.t.Helper()
	code, stdout, stderr := c.try(args...)
	if code != 0 {
		c.t.Fatalf("apgstack %s: exit %d\n%s", strings.Join(args, " "), code, stderr)
	}
	return stdout, stderr
}

// downAt stops the twin in dir when the test ends, whatever happened.
func (c *cliBinary) downAt(dir string) {
	c.t.Cleanup(func() {
		cmd := exec.Command(c.bin, "down", "--skip-final-snapshot", "--state-dir", dir)
		cmd.Dir, cmd.Env = c.work, c.env
		_ = cmd.Run()
	})
}
