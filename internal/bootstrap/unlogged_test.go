package bootstrap_test

import (
	"os"
	"strings"
	"testing"

	"github.com/apgstack/apgstack/internal/testkit/pgtest"
)

// TestNoVerifierInServerLog bootstraps, then changes a password, on a server logging as the
// parameter group says (log_statement=ddl, pgaudit ddl and role) and with every duration logged:
// the CREATE/ALTER ROLE ... PASSWORD statements leave only pgaudit's redacted record, and the DDL
// after them in the same transaction is still logged.
func TestNoVerifierInServerLog(t *testing.T) {
	s := start(t, pgtest.WithSetting("log_statement", "ddl"), pgtest.WithSetting("pgaudit.log", "ddl,role"),
		pgtest.WithSetting("log_min_duration_statement", "0"))
	conn := s.Conn(t, db)
	o := options("app")
	run(t, conn, o)
	o.ReadOnly.Password = "changed-ro-pw-Ee5"
	if rep := run(t, conn, o); len(rep.Changed) != 1 {
		t.Fatalf("password change: %+v", rep)
	}
	raw, err := os.ReadFile(s.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	log := string(raw)
	for _, want := range []string{
		`"CREATE ROLE ""app_ro"" LOGIN PASSWORD <REDACTED>"`, // pgaudit keeps the record, redacted
		`"ALTER ROLE ""app_ro"" PASSWORD <REDACTED>"`,
		`statement: CREATE SCHEMA "app"`, // logging is back after the role statements
	} {
		if !strings.Contains(log, want) {
			t.Errorf("server log lacks %s", want)
		}
	}
	if strings.Contains(log, "SCRAM-SHA-256$") {
		t.Error("server log holds a SCRAM verifier")
	}
}
