package runas

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// WriteFile gives the file to the account with the mode asked for.
func TestWriteFileOwnedByAccount(t *testing.T) {
	a, err := Resolve("")
	if err != nil {
		t.Skip(err)
	}
	path := filepath.Join(t.TempDir(), "postgresql.auto.conf")
	if err := a.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != a.UID || fi.Mode().Perm() != 0o600 {
		t.Errorf("owner %d mode %v, want %d and 0600", st.Uid, fi.Mode().Perm(), a.UID)
	}
}
