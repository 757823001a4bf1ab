package statedir

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestClaimAcceptsOnlyANewEmptyOrOwnDirectory(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	base := t.TempDir()
	file := filepath.Join(base, "a-file")
	write(t, file, "x")
	foreign := filepath.Join(base, "foreign")
	write(t, filepath.Join(foreign, "thesis.tex"), "mine")
	empty := filepath.Join(base, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	legacy := filepath.Join(base, "legacy") // a twin from before the marker
	write(t, filepath.Join(legacy, "state.json"), "{}")
	write(t, filepath.Join(legacy, "secrets", "x.json"), "{}")

	for _, tc := range []struct {
		name, dir string
		refused   bool
	}{
		{"root", "/", true},
		{"system directory", "/usr", true},
		{"home directory", home, true},
		{"a file", file, true},
		{"foreign files", foreign, true},
		{"new", filepath.Join(base, "new", "deeper"), false},
		{"empty", empty, false},
		{"legacy twin", legacy, false},
		{"inside home", filepath.Join(home, ".apgstack"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Claim(tc.dir)
			if tc.refused {
				if !errors.Is(err, ErrRefused) {
					t.Fatalf("Claim(%s) = %v, want a refusal", tc.dir, err)
				}
				if tc.dir != "/" && tc.dir != "/usr" {
					if _, err := os.Stat(filepath.Join(tc.dir, MarkerName)); err == nil {
						t.Errorf("a refused directory got a marker")
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Claim(%s): %v", tc.dir, err)
			}
			if !Has(tc.dir) {
				t.Errorf("no marker after Claim")
			}
			if err := Claim(tc.dir); err != nil { // again: it is the twin's now
				t.Errorf("second Claim: %v", err)
			}
		})
	}
	if data, err := os.ReadFile(filepath.Join(foreign, "thesis.tex")); err != nil || string(data) != "mine" {
		t.Errorf("a foreign file was touched: %q, %v", data, err)
	}
}

func TestRemoveDeletesOnlyAMarkedTwinWithNothingForeign(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	base := t.TempDir()

	unmarked := filepath.Join(base, "unmarked")
	write(t, filepath.Join(unmarked, "state.json"), "{}")
	mixed := filepath.Join(base, "mixed")
	if err := Claim(mixed); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(mixed, "secrets", "s.json"), "{}")
	write(t, filepath.Join(mixed, "notes.txt"), "keep me")
	file := filepath.Join(base, "file")
	write(t, file, "x")

	for _, dir := range []string{"/", home, unmarked, mixed, file} {
		if err := Remove(dir); !errors.Is(err, ErrRefused) {
			t.Errorf("Remove(%s) = %v, want a refusal", dir, err)
		}
	}
	for _, p := range []string{filepath.Join(mixed, "notes.txt"), filepath.Join(mixed, "secrets", "s.json"), filepath.Join(unmarked, "state.json"), file} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s did not survive a refused delete: %v", p, err)
		}
	}

	twin := filepath.Join(base, "twin")
	if err := Claim(twin); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(twin, "instances", "instance1", "data", "PG_VERSION"), "15")
	write(t, filepath.Join(twin, "state.json.tmp"), "{}")
	write(t, filepath.Join(twin, "ca.pem"), "pem")
	if err := Remove(twin); err != nil {
		t.Fatalf("Remove of a twin: %v", err)
	}
	if _, err := os.Stat(twin); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the twin's directory is still there: %v", err)
	}
	if err := Remove(twin); err != nil {
		t.Errorf("Remove of a directory already gone: %v", err)
	}
}
