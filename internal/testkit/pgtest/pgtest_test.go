package pgtest_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/apgstack/apgstack/internal/testkit/pgtest"
	"github.com/jackc/pgx/v5"
)

func TestStart(t *testing.T) {
	ctx := context.Background()
	var dir string
	t.Run("plain", func(t *testing.T) {
		s := pgtest.Start(t)
		dir = s.Dir
		conn := s.Conn(t, "postgres")
		var preload, ssl, checksums, version string
		if err := conn.QueryRow(ctx, "SELECT current_setting('shared_preload_libraries'), current_setting('ssl'), current_setting('data_checksums'), current_setting('server_version_num')").
			Scan(&preload, &ssl, &checksums, &version); err != nil {
			t.Fatal(err)
		}
		if preload != "pg_stat_statements,pgaudit" || ssl != "off" || checksums != "on" {
			t.Errorf("preload=%q ssl=%q checksums=%q", preload, ssl, checksums)
		}
		if !strings.HasPrefix(version, "15") {
			t.Logf("server version %s (15 preferred)", version)
		}
		if _, err := conn.Exec(ctx, "CREATE EXTENSION pgaudit"); err != nil {
			t.Errorf("pgaudit must load when preloaded: %v", err)
		}
		// A wrong password is refused: authentication is really on.
		if c, err := pgx.Connect(ctx, s.ConnStringAs(s.Superuser, "wrong", "postgres")); err == nil {
			c.Close(ctx)
			t.Error("connected with a wrong password")
		}
		s.CreateDatabase(t, "app")
		s.Conn(t, "app")
	})
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("state dir %s left behind after cleanup (err=%v)", dir, err)
	}

	t.Run("tls", func(t *testing.T) {
		s := pgtest.Start(t, pgtest.WithTLS(), pgtest.WithPreload())
		conn := s.Conn(t, "postgres")
		var ssl bool
		if err := conn.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil {
			t.Fatal(err)
		}
		if !ssl {
			t.Error("connection is not encrypted")
		}
		// Without TLS the server refuses (hostssl only).
		plain := strings.Replace(s.ConnString("postgres"), "sslmode=verify-full", "sslmode=disable", 1)
		if c, err := pgx.Connect(ctx, plain); err == nil {
			c.Close(ctx)
			t.Error("plain connection accepted; want hostssl only")
		}
	})
}
