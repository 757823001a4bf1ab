package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/apgstack/apgstack/internal/twin/statedir"
)

// TestBackupCommandsRefuseBadInput checks that bad flags and names are refused with exit 2,
// naming the value and what is allowed, before anything is touched.
func TestBackupCommandsRefuseBadInput(t *testing.T) {
	cfg := initConfig(t)
	dir := t.TempDir()
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"backup", "--type", "weekly"}, `--type "weekly": allowed values are full, diff and incr`},
		{[]string{"restore", "--to-time", "2026-01-01T00:00:00Z"}, "--name is required"},
		{[]string{"restore", "--name", "copy"}, "--to-time is required"},
		{[]string{"restore", "--name", "copy", "--to-time", "yesterday"}, `--to-time "yesterday": an RFC 3339 time`},
		{[]string{"restore", "--name", "copy", "--to-time", future}, "is in the future"},
		{[]string{"restore", "--name", "1copy", "--to-time", "latest"}, `--name "1copy"`},
		{[]string{"restore", "--name", "copy", "--to-time", "latest", "--port", "70000"}, "--port 70000"},
		{[]string{"snapshot", "create", "1bad"}, `snapshot name "1bad"`},
		{[]string{"snapshot", "delete", "a--b"}, `snapshot name "a--b"`},
		{[]string{"metrics", "--output", "yaml"}, `--output "yaml"`},
	} {
		code, _, stderr := run(t, nil, append(tc.args, "--config", cfg, "--state-dir", dir)...)
		if code != ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, %s; want exit 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}

func TestBackupCommandsNeedARunningTwin(t *testing.T) {
	cfg := initConfig(t)
	empty := t.TempDir()
	for _, args := range [][]string{{"backup"}, {"snapshot", "create", "s1"}, {"metrics"}, {"restore", "--name", "copy", "--to-time", "latest"}} {
		code, _, stderr := run(t, nil, append(args, "--config", cfg, "--state-dir", empty)...)
		if code != ExitFailure || !strings.Contains(stderr, "no twin in "+empty+" (apgstack up creates one)") {
			t.Errorf("%v in an empty directory: exit %d, %s", args, code, stderr)
		}
	}
	// A twin that does not run: its state directory is marked, and nothing listens.
	dir := t.TempDir()
	if err := statedir.Claim(dir); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"backup"}, {"snapshot", "create", "s1"}, {"metrics"}} {
		code, _, stderr := run(t, nil, append(args, "--config", cfg, "--state-dir", dir)...)
		if code != ExitFailure || !strings.Contains(stderr, "is not running: start it with `apgstack up`") {
			t.Errorf("%v: exit %d, %s", args, code, stderr)
		}
	}
	code, stdout, stderr := run(t, nil, "snapshot", "list", "-o", "json", "--config", cfg, "--state-dir", dir)
	if code != ExitOK || strings.TrimSpace(stdout) != "[]" {
		t.Errorf("snapshot list with none: exit %d, %q %s", code, stdout, stderr)
	}
	code, _, stderr = run(t, nil, "restore", "--name", "copy", "--to-time", "latest", "--config", cfg, "--state-dir", dir)
	if code != ExitFailure || !strings.Contains(stderr, "no local twin in") {
		t.Errorf("restore without a twin: exit %d, %s", code, stderr)
	}
}
