package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apgstack/apgstack/internal/twin/api"
)

// TestBinaryLocalMajorUpgradeRefusedBeforeTouching drives the built binary: a running 15.x twin
// asked to go to 16.x, whose server is not installed here, is refused with the packages to
// install (exit 2) and keeps running untouched; a downgrade is refused too. (The pg_upgrade
// itself is exercised by internal/twin TestMajorUpgradeMachinery, 15 -> 15.)
func TestBinaryLocalMajorUpgradeRefusedBeforeTouching(t *testing.T) {
	if _, err := os.Stat("/usr/lib/postgresql/16"); err == nil {
		t.Skip("PostgreSQL 16 is installed: the upgrade would run")
	}
	c := buildCLI(t)
	c.sets = append(c.sets, "--set", "database.engineVersion=15.15")
	c.ok("init")
	stateDir := filepath.Join(c.work, ".apgstack")
	c.downAt(stateDir)
	c.ok("up")
	for _, tc := range []struct {
		version string
		want    []string
	}{
		{"16.11", []string{"PostgreSQL 16 is not installed on this machine", "apt-get install postgresql-16 postgresql-16-pgaudit", "nothing was changed"}},
		{"14.20", []string{"the twin's data is PostgreSQL 15", "does not go back"}},
	} {
		code, _, stderr := c.try("upgrade", "--engine-version", tc.version, "--yes")
		if code != ExitUsage {
			t.Errorf("upgrade to %s: exit %d, want %d\n%s", tc.version, code, ExitUsage, stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("upgrade to %s does not say %q:\n%s", tc.version, w, stderr)
			}
		}
	}
	stdout, _ := c.ok("status", "-o", "json")
	var st api.Status
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatal(err)
	}
	if st.Phase != api.PhaseReady || !strings.HasPrefix(st.ServerVersion, "15.") || st.EngineVersion != "15.15" {
		t.Errorf("after the refusals the twin is %s on PostgreSQL %s (engine %s), want ready on 15 with 15.15", st.Phase, st.ServerVersion, st.EngineVersion)
	}
	if old, _ := filepath.Glob(filepath.Join(stateDir, "instances", "*", "data.pre-upgrade-*")); len(old) > 0 {
		t.Errorf("a refused upgrade set data aside: %v", old)
	}
	if left, _ := filepath.Glob(filepath.Join(stateDir, "instances", "*", "upgrade")); len(left) > 0 {
		t.Errorf("a refused upgrade left a work directory: %v", left)
	}

	// A later run at the twin's version with --delete-old deletes what a major upgrade kept (here
	// a directory of that name put in place; the upgrade itself is internal/twin's test).
	kept := filepath.Join(stateDir, "instances", "instance1", "data.pre-upgrade-14")
	if err := os.MkdirAll(filepath.Join(kept, "base"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, stderr := c.ok("upgrade", "--engine-version", "15.15", "--delete-old", "--yes")
	if !strings.Contains(stderr, "deleted "+kept) {
		t.Errorf("upgrade --delete-old does not say it deleted %s:\n%s", kept, stderr)
	}
	if _, err := os.Stat(kept); !os.IsNotExist(err) {
		t.Errorf("%s is still there: %v", kept, err)
	}
	if _, stderr = c.ok("upgrade", "--engine-version", "15.15", "--delete-old", "--yes"); !strings.Contains(stderr, "no old data directory to delete") {
		t.Errorf("a second --delete-old does not say there is nothing to delete:\n%s", stderr)
	}
}
