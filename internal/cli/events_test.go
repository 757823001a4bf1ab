package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/statedir"
)

func writeEventLog(t *testing.T, dir string, events []api.Event) {
	t.Helper()
	var b strings.Builder
	for _, ev := range events {
		data, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
		b.WriteByte('\n')
	}
	// The directory is a twin's (marked) whose log holds these events.
	if err := statedir.Claim(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "events.jsonl"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// initConfig writes the default configuration.
func initConfig(t *testing.T) string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "apgstack.yaml")
	if code, _, stderr := run(t, nil, "init", "--config", cfg); code != ExitOK {
		t.Fatalf("init: %s", stderr)
	}
	return cfg
}

func TestEventsFiltersAndJSON(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC()
	writeEventLog(t, dir, []api.Event{
		{Time: now.Add(-3 * time.Hour), SourceType: "db-cluster", SourceID: "apgstack-database", Category: "notification", Message: "cluster available"},
		{Time: now.Add(-30 * time.Minute), SourceType: "db-instance", SourceID: "instance1", Category: "failure", Message: "instance instance1 stopped unexpectedly"},
		{Time: now.Add(-20 * time.Minute), SourceType: "db-cluster", SourceID: "apgstack-database", Category: "failover", Message: "failover to instance2"},
		{Time: now.Add(-10 * time.Minute), SourceType: "db-parameter-group", SourceID: "apgstack-database-params", Category: "configuration change", Message: "reloaded"},
	})
	cfg := initConfig(t)
	base := []string{"events", "--config", cfg, "--state-dir", dir}

	code, stdout, stderr := run(t, nil, base...)
	if code != ExitOK || strings.Count(stdout, "\n") != 5 || !strings.Contains(stdout, "cluster available") {
		t.Fatalf("all events: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = run(t, nil, append(base, "--since", "1h", "--output", "json")...)
	var got []api.Event
	if code != ExitOK || json.Unmarshal([]byte(stdout), &got) != nil || len(got) != 3 {
		t.Fatalf("--since 1h: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, _ = run(t, nil, append(base, "--source-type", "db-parameter-group", "--category", "configuration change", "-o", "json")...)
	if code != ExitOK || json.Unmarshal([]byte(stdout), &got) != nil || len(got) != 1 || got[0].Message != "reloaded" {
		t.Fatalf("parameter group events: %s", stdout)
	}
	code, stdout, _ = run(t, nil, append(base, "--category", "failover", "-o", "json")...)
	if code != ExitOK || json.Unmarshal([]byte(stdout), &got) != nil || len(got) != 1 || got[0].SourceID != "apgstack-database" {
		t.Fatalf("failover events: %s", stdout)
	}
	code, stdout, _ = run(t, nil, append(base, "--category", "maintenance", "-o", "json")...)
	if code != ExitOK || strings.TrimSpace(stdout) != "[]" {
		t.Fatalf("no events must print [] in JSON: %q", stdout)
	}
}

func TestEventsRefusesBadFilters(t *testing.T) {
	dir := t.TempDir()
	cfg := initConfig(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--since", "yesterday"}, `--since "yesterday"`},
		{[]string{"--source-type", "db-proxy"}, `--source-type "db-proxy": allowed values are db-cluster, db-instance, db-parameter-group`},
		{[]string{"--category", "backup"}, `--category "backup"`},
		{[]string{"--source-type", "db-parameter-group", "--category", "failover"}, "allowed values for db-parameter-group are configuration change"},
	} {
		code, _, stderr := run(t, nil, append([]string{"events", "--config", cfg, "--state-dir", dir}, tc.args...)...)
		if code != ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, %s", tc.args, code, stderr)
		}
	}
	code, _, stderr := run(t, nil, "events", "--config", cfg, "--state-dir", filepath.Join(dir, "none"))
	if code != ExitFailure || !strings.Contains(stderr, "no twin in") {
		t.Errorf("missing state dir: exit %d, %s", code, stderr)
	}
}
