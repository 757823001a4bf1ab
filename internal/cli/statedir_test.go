package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Neither up nor down --delete accepts a directory that is not the twin's own: `/`, a home
// directory, a directory with the user's files, a file. They exit 2 and touch nothing.
func TestStateDirectoryThatIsNotTheTwinsIsRefused(t *testing.T) {
	home := t.TempDir()
	base := t.TempDir()
	userDir := filepath.Join(base, "project")
	if err := os.MkdirAll(userDir, 0o755); err != nil {
		t.Fatal(err)
	}
	userFile := filepath.Join(userDir, "main.go")
	if err := os.WriteFile(userFile, []byte("package main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	aFile := filepath.Join(base, "state")
	if err := os.WriteFile(aFile, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + home}
	t.Setenv("HOME", home)
	cfgPath := filepath.Join(t.TempDir(), "apgstack.yaml")
	if code, _, stderr := run(t, nil, "init", "--config", cfgPath); code != ExitOK {
		t.Fatalf("init: %s", stderr)
	}
	rootBefore, err := os.ReadDir("/")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, dir, says string }{
		{"root", "/", "system directory"},
		{"home", home, "home directory"},
		{"user files", userDir, "main.go|marker"},
		{"file", aFile, "not a directory"},
	} {
		for _, args := range [][]string{
			{"up", "--config", cfgPath, "--state-dir", tc.dir},
			{"down", "--config", cfgPath, "--state-dir", tc.dir, "--delete", "--yes", "--skip-final-snapshot"},
			{"up", "--config", cfgPath, "--set", "target.local.stateDir=" + tc.dir},
		} {
			t.Run(tc.name+"/"+strings.Join(args[:1], ""), func(t *testing.T) {
				code, _, stderr := run(t, env, args...)
				if code != ExitUsage {
					t.Fatalf("%v: exit %d, want %d: %s", args, code, ExitUsage, stderr)
				}
				says := false
				for _, w := range strings.Split(tc.says, "|") {
					says = says || strings.Contains(stderr, w)
				}
				if !strings.Contains(stderr, tc.dir) || !says {
					t.Errorf("%v: the message names neither the directory nor why: %s", args, stderr)
				}
			})
		}
	}
	if data, err := os.ReadFile(userFile); err != nil || string(data) != "package main\n" {
		t.Errorf("the user's file did not survive: %q %v", data, err)
	}
	if entries, _ := os.ReadDir(userDir); len(entries) != 1 {
		t.Errorf("something was created among the user's files: %v", entries)
	}
	if entries, _ := os.ReadDir(home); len(entries) != 0 {
		t.Errorf("something was created in the home directory: %v", entries)
	}
	rootAfter, err := os.ReadDir("/")
	if err != nil {
		t.Fatal(err)
	}
	if len(rootAfter) != len(rootBefore) {
		t.Errorf("/ changed: %d entries before, %d after", len(rootBefore), len(rootAfter))
	}
}
