package twintest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apgstack/apgstack/twintest"
)

// TestStartDev starts a dev twin for the test: the master and the read-only role connect with
// verify-full TLS through the writer endpoint (the reader endpoint falls back to the writer),
// the DSN carries no password, drop-connections ends a session, and the twin is whole after.
func TestStartDev(t *testing.T) {
	tw := twintest.Start(t, twintest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, tc := range []struct {
		role   string
		reader bool
	}{{twintest.Master, false}, {twintest.ReadOnly, true}} {
		dsn, err := tw.DSN(tc.reader, tc.role)
		if err != nil {
			t.Fatal(err)
		}
		user, pw, err := tw.Credentials(tc.role)
		if err != nil || user == "" || len(pw) < 8 {
			t.Fatalf("credentials of %s: user %q, %v", tc.role, user, err)
		}
		if strings.Contains(dsn, pw) || !strings.Contains(dsn, "sslmode='verify-full'") || !strings.Contains(dsn, tw.CAFile()) {
			t.Errorf("DSN of %s: a password in it, or no verify-full against the CA file", tc.role)
		}
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatalf("connect as %s: %v", tc.role, err)
		}
		var got string
		if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&got); err != nil || got != user {
			t.Errorf("as %s: current_user %q, %v; want %q", tc.role, got, err, user)
		}
		if tc.role == twintest.Master {
			if err := tw.Inject(ctx, twintest.DropConnections, 0); err != nil {
				t.Fatal(err)
			}
			if err := conn.Ping(ctx); err == nil {
				t.Error("the session survived drop-connections")
			}
		}
		conn.Close(ctx)
	}
	if err := tw.Inject(ctx, twintest.CrashReader, 0); err == nil {
		t.Error("crash-reader on dev (no reader) was accepted")
	}
	if err := tw.WaitWhole(ctx); err != nil {
		t.Fatal(err)
	}
}
