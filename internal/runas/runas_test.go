package runas

import (
	"os"
	"os/user"
	"path/filepath"
	"strings"
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

// An account that does not exist is named, with what was tried and the accounts that exist.
func TestResolveNamesTheMissingAccount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root switches accounts")
	}
	_, err := Resolve("apgstack-no-such-account")
	if err == nil {
		t.Fatal("Resolve of a missing account succeeded")
	}
	msg := err.Error()
	for _, want := range []string{`target.local.osUser "apgstack-no-such-account": no such account on this machine`, "useradd --system --create-home apgstack-no-such-account"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if pg, err := user.Lookup(DefaultUser); err == nil {
		for _, want := range []string{"existing: the postgres account (uid " + pg.Uid + ")", "leave target.local.osUser empty to use postgres"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error lacks %q:\n%s", want, msg)
			}
		}
	}
	if strings.Contains(msg, `it creates "apgstack-no-such-account"`) {
		t.Errorf("error claims a package creates the named account:\n%s", msg)
	}
}
