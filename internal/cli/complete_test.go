package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/bestpractice"
)

// completions runs cobra's hidden __complete command through the binary and returns the
// offered values (descriptions dropped).
func (c *cliBinary) completions(args ...string) []string {
	c.t.Helper()
	stdout, _ := c.ok(append([]string{"__complete"}, args...)...)
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if line == "" || strings.HasPrefix(line, ":") {
			continue
		}
		v, _, _ := strings.Cut(line, "\t")
		out = append(out, v)
	}
	return out
}

// TestBinaryCompletesFlagValues drives `apgstack __complete` (what the shell scripts of
// `apgstack completion` call) through the built binary: fixed values from where they are
// declared, then names that live in a pre-prod twin (instances, snapshots, backups), while it
// runs and after down.
func TestBinaryCompletesFlagValues(t *testing.T) {
	c := buildCLI(t)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--target", ""}, apgstack.TargetKinds},
		{[]string{"status", "-o", ""}, outputFormats},
		{[]string{"status", "--output", ""}, outputFormats},
		{[]string{"explain", "--stage", ""}, bestpractice.StageNames},
		{[]string{"policy", "check", "--stage", ""}, bestpractice.StageNames},
		{[]string{"env", "--role", ""}, bestpractice.RotationRoles},
		{[]string{"restore", "--to-time", ""}, []string{"latest"}}, // no twin yet
		{[]string{"snapshot", "delete", ""}, nil},
		{[]string{"up", "--set", "database.po"}, []string{"database.port="}},
		{[]string{"up", "--set", "environment.stage="}, []string{"environment.stage=dev", "environment.stage=test", "environment.stage=pre-prod", "environment.stage=prod"}},
		{[]string{"up", "--set", "target.kind=a"}, []string{"target.kind=aws"}},
	} {
		if got := c.completions(tc.args...); !slices.Equal(got, tc.want) {
			t.Errorf("__complete %s: %q, want %q", strings.Join(tc.args, " "), got, tc.want)
		}
	}

	c.sets = append(c.sets, "--set", "environment.stage=pre-prod")
	c.ok("init")
	c.downAt(filepath.Join(c.work, ".apgstack"))
	c.ok("up")
	c.ok("snapshot", "create", "before-change")
	t.Cleanup(func() { os.RemoveAll(filepath.Join(c.work, ".apgstack-snapshots")) })
	stdout, _ := c.ok("backup", "-o", "json")
	if !strings.Contains(stdout, `"label"`) {
		t.Fatalf("backup printed no label:\n%s", stdout)
	}
	check := func(when string) {
		t.Helper()
		if got := c.completions("failover", "--target-instance", ""); !slices.Equal(got, []string{"instance2"}) {
			t.Errorf("%s: failover --target-instance offers %q, want the reader instance2", when, got)
		}
		for _, args := range [][]string{{"reboot", "--instance", ""}, {"logs", "--instance", ""}} {
			if got := c.completions(args...); !slices.Equal(got, []string{"instance1", "instance2"}) {
				t.Errorf("%s: %s offers %q, want instance1 and instance2", when, strings.Join(args, " "), got)
			}
		}
		if got := c.completions("snapshot", "delete", ""); !slices.Equal(got, []string{"before-change"}) {
			t.Errorf("%s: snapshot delete offers %q, want before-change", when, got)
		}
		if got := c.completions("up", "--set", "database.snapshotName="); !slices.Equal(got, []string{"database.snapshotName=before-change"}) {
			t.Errorf("%s: --set database.snapshotName= offers %q, want the snapshot before-change", when, got)
		}
		got := c.completions("restore", "--to-time", "")
		if len(got) != 2 || got[0] != "latest" {
			t.Fatalf("%s: restore --to-time offers %q, want latest and the end of the one backup", when, got)
		}
		if _, err := time.Parse(time.RFC3339, got[1]); err != nil {
			t.Errorf("%s: restore --to-time offers %q, not an RFC 3339 time: %v", when, got[1], err)
		}
	}
	check("running")
	c.ok("down", "--skip-final-snapshot")
	check("stopped")
	// The offered moment is one restore accepts (the twin's backups are read while it is down).
	got := c.completions("restore", "--to-time", "")
	c.downAt(filepath.Join(c.work, ".apgstack-copy"))
	if _, stderr := c.ok("restore", "--to-time", got[1], "--name", "copy", "--no-start"); !strings.Contains(stderr, "restor") {
		t.Errorf("restore --to-time %s said nothing of restoring:\n%s", got[1], stderr)
	}
}
