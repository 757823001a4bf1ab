package twin

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/apgstack/apgstack/internal/testkit/pgtest"
	"github.com/apgstack/apgstack/internal/twin/api"
)

// buildBinary builds apgstack into a new working directory the server account can reach.
func buildBinary(t *testing.T) (work, bin string) {
	t.Helper()
	work = pgtest.ReachableDir(t, "e2e")
	bin = filepath.Join(work, "apgstack")
	build := exec.Command("go", "build", "-o", bin, "github.com/apgstack/apgstack/cmd/apgstack")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return work, bin
}

// freePort is a loopback port free now, in the range database.port allows.
func freePort(t *testing.T) int {
	t.Helper()
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if p >= 1150 {
			return p
		}
	}
}

// cli runs the built binary in work with args, as a user at a shell without a terminal would.
func cli(t *testing.T, work, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return cliEnv(t, work, bin, nil, args...)
}

// cliEnv is cli with env added to the environment: the test hooks (a crash point) are set there.
func cliEnv(t *testing.T, work, bin string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = work
	cmd.Env = append(append(os.Environ(), "NO_COLOR=1"), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%v: %v", args, err)
	}
	return o.String(), e.String(), code
}

// mustCLI is cli for a command that must succeed.
func mustCLI(t *testing.T, work, bin string, args ...string) (stdout, stderr string) {
	t.Helper()
	out, errOut, code := cli(t, work, bin, args...)
	if code != 0 {
		t.Fatalf("%v: exit %d\n%s", args, code, errOut)
	}
	return out, errOut
}

// binTwin is a twin driven through the built binary, as the end-to-end tests do: its working
// directory, endpoint ports free at the start, and the --set flags that name them.
type binTwin struct {
	t                *testing.T
	work, bin        string
	port, readerPort int
	sets             []string // the ports' and the test's own --set flags, put first by run
	stateDir         string   // the default state directory in work
}

// newBinTwin builds the binary and picks the ports; sets are more flags for every run. The twin
// in the default state directory is stopped when the test ends, whatever happened, so that no
// server outlives the test.
func newBinTwin(t *testing.T, sets ...string) *binTwin {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary and runs PostgreSQL")
	}
	work, bin := buildBinary(t)
	port, readerPort := freePort(t), freePort(t)
	b := &binTwin{t: t, work: work, bin: bin, port: port, readerPort: readerPort, stateDir: filepath.Join(work, ".apgstack"),
		// Clipped: a test's append to sets must copy, not write into another's.
		sets: slices.Clip(append([]string{"--set", "database.port=" + strconv.Itoa(port), "--set", "target.local.readerPort=" + strconv.Itoa(readerPort)}, sets...))}
	t.Cleanup(func() { cli(t, work, bin, "down", "--skip-final-snapshot", "--state-dir", b.stateDir) })
	return b
}

// with is the twin's flags followed by args, in a new slice.
func (b *binTwin) with(args ...string) []string {
	return append(append([]string{}, b.sets...), args...)
}

// cli runs the binary with args alone (the test names the configuration itself).
func (b *binTwin) cli(args ...string) (stdout, stderr string, code int) {
	b.t.Helper()
	return cli(b.t, b.work, b.bin, args...)
}

// mustCLI is cli for a command that must succeed.
func (b *binTwin) mustCLI(args ...string) (stdout, stderr string) {
	b.t.Helper()
	return mustCLI(b.t, b.work, b.bin, args...)
}

// run runs the binary with the twin's flags and args.
func (b *binTwin) run(args ...string) (stdout, stderr string, code int) {
	b.t.Helper()
	return b.runEnv(nil, args...)
}

// runEnv is run with env added to the environment.
func (b *binTwin) runEnv(env []string, args ...string) (stdout, stderr string, code int) {
	b.t.Helper()
	return cliEnv(b.t, b.work, b.bin, env, b.with(args...)...)
}

// mustRun is run for a command that must succeed.
func (b *binTwin) mustRun(args ...string) (stdout, stderr string) {
	b.t.Helper()
	return mustCLI(b.t, b.work, b.bin, b.with(args...)...)
}

// status is the twin's status; the zero Status while no supervisor answers, for the tests that
// poll through a supervisor's death.
func (b *binTwin) status() api.Status {
	b.t.Helper()
	out, _, _ := b.run("status", "-o", "json")
	var st api.Status
	_ = json.Unmarshal([]byte(out), &st)
	return st
}
