package postgres

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apgstack/apgstack/bestpractice"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update): %v", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from golden file (run go test ./postgres -update to accept):\n%s", name, got)
	}
}

func allParams() []bestpractice.Parameter {
	return append(append([]bestpractice.Parameter{}, bestpractice.ClusterParameters...), bestpractice.InstanceParameterGroup("ddl,role")...)
}

func debianLibs(lib string) bool { return lib != "pg_hint_plan" }

func TestPlanParameters(t *testing.T) {
	tests := []struct {
		name      string
		params    []bestpractice.Parameter
		installed func(string) bool
		wantLibs  string
		missing   string
		wantErr   string
	}{
		{name: "debian without pg_hint_plan", params: allParams(), installed: debianLibs,
			wantLibs: "auto_explain,pg_stat_statements,pgaudit", missing: "pg_hint_plan"},
		{name: "everything installed", params: allParams(), installed: func(string) bool { return true },
			wantLibs: "auto_explain,pg_stat_statements,pg_hint_plan,pgaudit"},
		{name: "nothing installed", params: allParams(), installed: func(string) bool { return false },
			wantLibs: "", missing: "auto_explain,pg_stat_statements,pg_hint_plan,pgaudit"},
		{name: "unknown rds setting", params: []bestpractice.Parameter{{Name: "rds.new_thing", Value: "1", RDSOnly: true}},
			installed: debianLibs, wantErr: "rds.new_thing: no local meaning"},
		{name: "bad retention unit", params: []bestpractice.Parameter{{Name: "rds.log_retention_period", Value: "5", Unit: "kB", RDSOnly: true}},
			installed: debianLibs, wantErr: "not a time unit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := PlanParameters(tt.params, tt.installed)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(p.Libraries, ","); got != tt.wantLibs {
				t.Errorf("libraries = %q, want %q", got, tt.wantLibs)
			}
			if got := strings.Join(p.MissingLibraries, ","); got != tt.missing {
				t.Errorf("missing = %q, want %q", got, tt.missing)
			}
			if !p.ForceSSL || p.LogRetention != 7*24*time.Hour {
				t.Errorf("rds settings: force_ssl=%v retention=%v", p.ForceSSL, p.LogRetention)
			}
		})
	}
}

// Every best-practice entry is realized: as a GUC in postgresql.conf or as an rds.* meaning.
func TestEveryEntryRealized(t *testing.T) {
	p, err := PlanParameters(allParams(), debianLibs)
	if err != nil {
		t.Fatal(err)
	}
	conf := Conf(p, Server{Name: "writer", Port: 6000, SocketDir: "/s", CertFile: "c", KeyFile: "k"})
	for _, prm := range allParams() {
		if prm.RDSOnly {
			continue
		}
		if !strings.Contains(conf, "\n"+prm.Name+" = ") {
			t.Errorf("%s missing from postgresql.conf", prm.Name)
		}
	}
	if !strings.Contains(conf, "ssl = 'on'") {
		t.Error("rds.force_ssl did not turn ssl on")
	}
	if strings.Contains(HBA(true), "\nhost ") || !strings.Contains(HBA(true), "hostssl") {
		t.Error("rds.force_ssl: pg_hba admits TCP without TLS")
	}
}

func TestGolden(t *testing.T) {
	p, err := PlanParameters(allParams(), debianLibs)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "writer.conf", Conf(p, Server{Name: "writer", Port: 40001, SocketDir: "/state/instances/writer",
		CertFile: "/state/instances/writer/server.crt", KeyFile: "/state/instances/writer/server.key"}))
	golden(t, "reader.conf", Conf(p, Server{Name: "reader1", Port: 40002, SocketDir: "/state/instances/reader1",
		CertFile: "/state/instances/reader1/server.crt", KeyFile: "/state/instances/reader1/server.key",
		Primary: &Primary{SocketDir: "/state/instances/writer", Port: 40001, Slot: "reader1"}}))
	golden(t, "pg_hba.conf", HBA(true))
	golden(t, "extra.conf", Conf(p, Server{Name: "writer", Port: 40001, SocketDir: "/s", CertFile: "c", KeyFile: "k",
		Extra: []GUC{{Name: "archive_mode", Value: "on", Why: "WAL archiving for backups"}}}))
	golden(t, "pg_ident.conf", Ident([]string{"root", "postgres", "postgres"}))
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{`"$user",public`: `'"$user",public'`, "it's": "'it''s'", "": "''"} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}
