package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apgstack/apgstack/internal/twin/api"
)

// TestBinarySnapshotsFollowTheMovedState drives the built binary in a working directory the
// postgres account cannot reach, so up moves the state under /var/lib/apgstack (linked from
// .apgstack): down takes a final snapshot there; snapshot list shows it, also after down --delete
// removed the twin and its link; snapshot delete removes it.
func TestBinarySnapshotsFollowTheMovedState(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the state moves only when apgstack runs as root")
	}
	c := buildCLI(t)
	if err := os.Chmod(c.work, 0o700); err != nil { // postgres cannot reach it: up moves the state
		t.Fatal(err)
	}
	name := fmt.Sprintf("moved%d", time.Now().UnixNano()%1e9)
	c.sets = append(c.sets, "--set", "database.stackName="+name)
	c.ok("init")
	link := filepath.Join(c.work, ".apgstack")
	c.downAt(link)
	_, stderr := c.ok("up")
	real, err := filepath.EvalSymlinks(link)
	if err != nil || !strings.HasPrefix(real, "/var/lib/apgstack/") {
		t.Fatalf("the state did not move under /var/lib/apgstack (%q, %v):\n%s", real, err, stderr)
	}
	t.Cleanup(func() { os.RemoveAll(real) })
	c.ok("down", "--yes")
	list := func() []api.Snapshot {
		t.Helper()
		stdout, _ := c.ok("snapshot", "list", "-o", "json")
		var l []api.Snapshot
		if err := json.Unmarshal([]byte(stdout), &l); err != nil {
			t.Fatalf("snapshot list -o json: %v\n%s", err, stdout)
		}
		var mine []api.Snapshot
		for _, s := range l {
			if s.Cluster == name {
				mine = append(mine, s)
			}
		}
		return mine
	}
	got := list()
	if len(got) != 1 || got[0].Kind != "final" {
		t.Fatalf("after down, snapshot list shows %+v, want the one final snapshot", got)
	}
	final := got[0].Name
	t.Cleanup(func() { os.RemoveAll(filepath.Join("/var/lib/apgstack/.apgstack-snapshots", final)) })
	c.ok("down", "--delete", "--skip-final-snapshot", "--yes")
	if _, err := os.Lstat(link); err == nil {
		t.Fatalf("down --delete left %s", link)
	}
	if got := list(); len(got) != 1 || got[0].Name != final {
		t.Fatalf("after down --delete, snapshot list shows %+v, want %s", got, final)
	}
	c.ok("snapshot", "delete", final, "--yes")
	if got := list(); len(got) != 0 {
		t.Fatalf("after snapshot delete, snapshot list shows %+v", got)
	}
}
