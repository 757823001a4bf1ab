package secretstore

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/apgstack/apgstack/bestpractice"
)

func TestStagesMoveLikeSecretsManager(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets")
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	name := bestpractice.SecretName("dev", "apgstack-database")
	want := DatabaseSecret{Engine: "postgres", Host: "localhost", Port: 5432, Username: "pgadmin", Password: "p1", DBName: "db"}
	if err := s.CreateDatabase(name, want); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateDatabase(name, want); err == nil {
		t.Fatal("second create succeeded")
	}
	got, err := s.GetDatabase(name, Current)
	if err != nil || got != want {
		t.Fatalf("current = %+v, %v", got, err)
	}
	fi, _ := os.Stat(s.Path(name))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode %v, want 0600", fi.Mode().Perm())
	}
	if di, _ := os.Stat(dir); di.Mode().Perm() != 0o700 {
		t.Errorf("store mode %v, want 0700", di.Mode().Perm())
	}
	first, _ := s.Get(name, Current)

	steps := []struct {
		do                func() error
		current, previous string // secret strings
		pending           string
	}{
		{do: func() error { _, err := s.PutPending(name, "v2"); return err }, current: first.SecretString, pending: "v2"},
		{do: func() error { v, _ := s.Get(name, Pending); return s.Promote(name, v.VersionID) }, current: "v2", previous: first.SecretString},
		{do: func() error { _, err := s.PutPending(name, "v3"); return err }, current: "v2", previous: first.SecretString, pending: "v3"},
		{do: func() error { v, _ := s.Get(name, Pending); return s.Promote(name, v.VersionID) }, current: "v3", previous: "v2"},
	}
	for i, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		for stage, want := range map[string]string{Current: st.current, Previous: st.previous, Pending: st.pending} {
			v, err := s.Get(name, stage)
			if want == "" {
				if !errors.Is(err, ErrNotFound) {
					t.Errorf("step %d: %s = %q, want none", i, stage, v.SecretString)
				}
				continue
			}
			if err != nil || v.SecretString != want {
				t.Errorf("step %d: %s = %q (%v), want %q", i, stage, v.SecretString, err, want)
			}
		}
	}
	sec, _ := s.Describe(name)
	if len(sec.Versions) != 2 {
		t.Errorf("%d versions kept, want 2 (current and previous)", len(sec.Versions))
	}
}

func TestBadNames(t *testing.T) {
	s, _ := Open(t.TempDir())
	for _, name := range []string{"", "../x", "a/../b", "/abs", "sp ace"} {
		if _, err := s.Create(name, "x"); err == nil || !strings.Contains(err.Error(), "allowed") {
			t.Errorf("Create(%q) = %v", name, err)
		}
	}
}

func TestGeneratePassword(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		p, err := GeneratePassword()
		if err != nil {
			t.Fatal(err)
		}
		if len(p) != bestpractice.PasswordLength || strings.ContainsAny(p, bestpractice.PasswordExcludeCharacters+" ") {
			t.Fatalf("password of length %d contains excluded characters", len(p))
		}
		if seen[p] {
			t.Fatal("repeated password")
		}
		seen[p] = true
	}
}

func TestVersionIDsAreUUIDv4(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	for range 50 {
		if id := newID(); !re.MatchString(id) {
			t.Fatalf("version id %q is not a version-4 UUID", id)
		}
	}
}
