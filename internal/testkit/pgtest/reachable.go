package pgtest

import (
	"os"
	"testing"
)

// ReachableDir is a new directory, removed at the test's end, that the server account can enter:
// t.TempDir is 0700 and root's when the tests run as root, and PostgreSQL runs as another account.
func ReachableDir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "apgstack-"+prefix+"-*")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return dir
}
