package instance

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestChoose(t *testing.T) {
	tests := []struct {
		name      string
		installed []int
		want      int
		strict    bool
		got       int
		errText   string
	}{
		{name: "exact", installed: []int{15, 17}, want: 17, got: 17},
		{name: "nearest below (Debian 12)", installed: []int{15}, want: 17, got: 15},
		{name: "nearest of several", installed: []int{13, 15, 18}, want: 17, got: 18},
		{name: "tie prefers newer", installed: []int{15, 17}, want: 16, got: 17},
		{name: "strict refuses, naming apt.postgresql.org", installed: []int{15}, want: 17, strict: true, errText: "apt.postgresql.org"},
		{name: "none installed names the package", installed: nil, want: 17, errText: "postgresql-15"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Choose(tt.installed, tt.want, tt.strict)
			if tt.errText != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.errText)
				}
				return
			}
			if err != nil || got != tt.got {
				t.Fatalf("Choose = %d, %v; want %d", got, err, tt.got)
			}
		})
	}
	var vm *VersionMismatch
	if _, err := Choose([]int{15}, 17, true); !errors.As(err, &vm) || vm.Want != 17 {
		t.Errorf("strict error is not a *VersionMismatch: %v", err)
	}
}

func TestFindBinariesOnThisMachine(t *testing.T) {
	b, warn, err := FindBinaries(context.Background(), 17, false)
	if errors.Is(err, ErrNotInstalled) {
		t.Skip("no PostgreSQL server installed")
	}
	if err != nil {
		t.Fatal(err)
	}
	if b.Major != 17 && (warn == "" || !strings.Contains(warn, "apt.postgresql.org")) {
		t.Errorf("running on %d without a plain warning: %q", b.Major, warn)
	}
	if !b.HasLibrary("pg_stat_statements") {
		t.Errorf("pkglibdir %s has no pg_stat_statements", b.PkgLibDir)
	}
}

func TestPruneLogs(t *testing.T) {
	i := &Instance{Name: "x", Dir: t.TempDir()}
	logDir := filepath.Join(i.DataDir(), "log")
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for name, age := range map[string]time.Duration{"old.log": 8 * 24 * time.Hour, "new.log": time.Hour} {
		p := filepath.Join(logDir, name)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := i.PruneLogs(now.Add(-7 * 24 * time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("pruned %d, %v; want 1", n, err)
	}
	if _, err := os.Stat(filepath.Join(logDir, "old.log")); !os.IsNotExist(err) {
		t.Error("old log kept")
	}
	if _, err := os.Stat(filepath.Join(logDir, "new.log")); err != nil {
		t.Error("new log deleted")
	}
}

func TestSocketPathTooLong(t *testing.T) {
	i := &Instance{Name: "x", Dir: "/" + strings.Repeat("d", 100), Port: 5432}
	if err := i.Prepare(); err == nil || !strings.Contains(err.Error(), "shorter --state-dir") {
		t.Fatalf("Prepare with a long path: %v", err)
	}
}

func TestFailureLinesPickWhy(t *testing.T) {
	for _, tc := range []struct{ log, want string }{
		{"LOG:  starting\nLOG:  pgaudit extension initialized\nFATAL:  lock file \"postmaster.pid\" already exists\nHINT:  Is another postmaster running?\nLOG:  shutting down",
			"FATAL:  lock file \"postmaster.pid\" already exists\nHINT:  Is another postmaster running?"},
		{"LOG:  a\nLOG:  b", "LOG:  a\nLOG:  b"},
	} {
		if got := failureLines(tc.log); got != tc.want {
			t.Errorf("failureLines = %q, want %q", got, tc.want)
		}
	}
}
