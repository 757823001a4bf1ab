package scram

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/apgstack/apgstack/internal/testkit/pgtest"
)

// quote is a SQL string literal (verifiers hold no quote; this only keeps the test honest).
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// TestExecUnloggedKeepsVerifiersOutOfTheServerLog runs password statements on a server that logs
// every statement it can (log_statement=ddl as the parameter group, every duration, the failing
// statement, pgaudit's ddl and role classes) and checks that no verifier reaches the log or
// pg_stat_statements, while the statements around them are still logged.
func TestExecUnloggedKeepsVerifiersOutOfTheServerLog(t *testing.T) {
	srv := pgtest.Start(t,
		pgtest.WithSetting("log_statement", "ddl"),
		pgtest.WithSetting("log_min_duration_statement", "0"),
		pgtest.WithSetting("pgaudit.log", "ddl,role"),
		pgtest.WithSetting("pg_stat_statements.track_utility", "on"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin := srv.Conn(t, "postgres")
	for _, sql := range []string{"CREATE EXTENSION pgaudit", "CREATE EXTENSION pg_stat_statements",
		"CREATE ROLE role_admin LOGIN CREATEROLE PASSWORD NULL"} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	verifier := func(t *testing.T) string {
		v, err := Verifier("pw-" + t.Name())
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	tests := []struct {
		name    string
		stmt    func(v string) string
		wantErr bool
	}{
		{"create role", func(v string) string { return "CREATE ROLE quiet_new LOGIN PASSWORD " + quote(v) }, false},
		{"alter role", func(v string) string { return "ALTER ROLE quiet_new PASSWORD " + quote(v) }, false},
		{"alter missing role", func(v string) string { return "ALTER ROLE quiet_ghost PASSWORD " + quote(v) }, true},
	}
	var verifiers []string
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := verifier(t)
			verifiers = append(verifiers, v)
			tx, err := admin.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tx.Rollback(ctx) }()
			err = ExecUnlogged(ctx, tx, tt.stmt(v))
			if (err != nil) != tt.wantErr {
				t.Fatalf("ExecUnlogged: %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				if strings.Contains(err.Error(), v) {
					t.Error("the error quotes the verifier")
				}
				return
			}
			// Logging is back for the rest of the transaction.
			marker := "CREATE TABLE quiet_after_" + strings.Repeat("x", i+1) + " ()"
			if _, err := tx.Exec(ctx, marker); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			var stored string
			if err := admin.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = 'quiet_new'").Scan(&stored); err != nil || stored != v {
				t.Errorf("the role does not hold the verifier sent (err %v)", err)
			}
			log := readLog(t, srv)
			if !strings.Contains(log, marker) {
				t.Errorf("the statement after the password statement is not logged: logging was not put back")
			}
		})
	}

	// A role that may not change logging settings still gets its statement run.
	t.Run("not a superuser", func(t *testing.T) {
		conn := srv.Conn(t, "postgres")
		if _, err := conn.Exec(ctx, "SET ROLE role_admin"); err != nil {
			t.Fatal(err)
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if err := ExecUnlogged(ctx, tx, "CREATE ROLE quiet_by_admin LOGIN PASSWORD NULL"); err != nil {
			t.Fatalf("ExecUnlogged as a non-superuser: %v", err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	})

	log := readLog(t, srv)
	if !strings.Contains(log, "CREATE EXTENSION pgaudit") || !strings.Contains(log, "AUDIT: SESSION") {
		t.Fatal("the server log lacks the statement and audit lines: logging is not on, the checks below prove nothing")
	}
	if strings.Contains(log, "SCRAM-SHA-256$") {
		t.Error("the server log holds a SCRAM verifier")
	}
	// The audit trail keeps the role change, with pgaudit's own redaction.
	if !strings.Contains(log, "ALTER ROLE quiet_new PASSWORD <REDACTED>") {
		t.Error("pgaudit does not record the ALTER ROLE, redacted")
	}
	var kept int
	if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_statements WHERE query LIKE '%SCRAM-SHA-256$%'").Scan(&kept); err != nil {
		t.Fatal(err)
	}
	if kept != 0 {
		t.Errorf("pg_stat_statements keeps %d statements with a verifier", kept)
	}
	for _, v := range verifiers {
		if strings.Contains(log, v) {
			t.Error("the server log holds a verifier")
		}
	}
}

func readLog(t *testing.T, srv *pgtest.Server) string {
	t.Helper()
	b, err := os.ReadFile(srv.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
