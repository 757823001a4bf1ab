package rotation

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apgstack/apgstack/internal/scram"

	"github.com/apgstack/apgstack/internal/testkit/pgtest"
	"github.com/apgstack/apgstack/internal/twin/postgres"
	"github.com/apgstack/apgstack/internal/twin/secretstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// fixture is a TLS server whose roles have secrets in a store, and a rotator over both.
type fixture struct {
	srv   *pgtest.Server
	store *secretstore.Store
	rot   *Rotator
	logs  *bytes.Buffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	// log_statement=ddl and pgaudit's classes as in the parameter group: the server log must still
	// never see a password nor its verifier.
	srv := pgtest.Start(t, pgtest.WithTLS(), pgtest.WithSetting("log_statement", "ddl"), pgtest.WithSetting("pgaudit.log", "ddl,role"))
	store, err := secretstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	f := &fixture{srv: srv, store: store, logs: logs}
	f.rot = &Rotator{
		Store: store,
		Admin: func(ctx context.Context) (*pgx.Conn, error) {
			return pgx.Connect(ctx, srv.ConnString("postgres"))
		},
		Connect: TLSConnector(srv.CAFile),
		Log:     slog.New(slog.NewTextHandler(&lockedWriter{w: logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	return f
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// addRole creates a login role with a generated password and its secret, as the twin's bootstrap
// does; attrs is e.g. "SUPERUSER" for the master user.
func (f *fixture) addRole(t *testing.T, role, attrs string) string {
	t.Helper()
	pw, err := secretstore.GeneratePassword()
	if err != nil {
		t.Fatal(err)
	}
	v, err := scram.Verifier(pw)
	if err != nil {
		t.Fatal(err)
	}
	// Unlogged as the bootstrap does, so that the server log checks judge the rotation alone.
	ctx := context.Background()
	tx, err := f.srv.Conn(t, "postgres").Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := scram.ExecUnlogged(ctx, tx, "CREATE ROLE "+pgx.Identifier{role}.Sanitize()+" LOGIN "+attrs+" PASSWORD "+postgres.Quote(v)); err != nil {
		t.Fatalf("create role %s: %v", role, err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	name := "dev/aurora-pg/test/" + role
	if err := f.store.CreateDatabase(name, secretstore.DatabaseSecret{Engine: "postgres", Host: "127.0.0.1", Port: f.srv.Port,
		Username: role, Password: pw, DBName: "postgres"}); err != nil {
		t.Fatal(err)
	}
	return name
}

func (f *fixture) secret(t *testing.T, name, stage string) secretstore.DatabaseSecret {
	t.Helper()
	d, err := f.store.GetDatabase(name, stage)
	if err != nil {
		t.Fatalf("secret %s %s: %v", name, stage, err)
	}
	return d
}

// login connects with a secret over TLS verify-full.
func (f *fixture) login(d secretstore.DatabaseSecret) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := TLSConnector(f.srv.CAFile)(ctx, d)
	if err != nil {
		return err
	}
	return c.Close(ctx)
}

func isAuthFailure(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "28P01"
}

// noSecretIn fails when any password shows in text.
func noSecretIn(t *testing.T, what, text string, passwords ...string) {
	t.Helper()
	for _, p := range passwords {
		if p != "" && strings.Contains(text, p) {
			t.Errorf("%s contains a password", what)
		}
	}
}

// TestRotateUnderPool rotates the master secret (single-user strategy) and the three application
// roles' secrets while a pool keeps connections open and busy: every pooled query succeeds,
// connections opened before the rotation keep working, new connections succeed with the new
// password, the old password is refused, and the stages move as Secrets Manager moves them.
func TestRotateUnderPool(t *testing.T) {
	f := newFixture(t)
	roles := []struct{ role, attrs string }{
		{"master", "SUPERUSER"}, {"app_owner", ""}, {"app_rw", ""}, {"app_ro", ""},
	}
	for _, r := range roles {
		t.Run(r.role, func(t *testing.T) {
			name := f.addRole(t, r.role, r.attrs)
			old := f.secret(t, name, secretstore.Current)
			oldVersion, _ := f.store.Get(name, secretstore.Current)

			// The pool reads AWSCURRENT for every new connection, as an application using the
			// secret would.
			cfg, err := pgxpool.ParseConfig("host=127.0.0.1 sslmode=verify-full")
			if err != nil {
				t.Fatal(err)
			}
			cc := cfg.ConnConfig
			cc.Port, cc.Database, cc.User = uint16(f.srv.Port), "postgres", r.role
			cc.TLSConfig = f.srv.TLSConfig()
			cfg.MaxConns, cfg.MinConns = 6, 4
			cfg.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
				d, err := f.store.GetDatabase(name, secretstore.Current)
				cc.Password = d.Password
				return err
			}
			ctx := context.Background()
			pool, err := pgxpool.NewWithConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			// Open all six sessions first (a session opened during the rotation, between setSecret
			// and finishSecret, would meet the single-user strategy's known window); hold three
			// across the rotation and keep the others busy.
			var held []*pgxpool.Conn
			for range 6 {
				c, err := pool.Acquire(ctx)
				if err != nil {
					t.Fatal(err)
				}
				held = append(held, c)
			}
			for _, c := range held[3:] {
				c.Release()
			}
			held = held[:3]
			var pids []uint32
			for _, c := range held {
				pids = append(pids, c.Conn().PgConn().PID())
			}
			stop := make(chan struct{})
			var queries, failures atomic.Int64
			var wg sync.WaitGroup
			for range 3 {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						var one int
						if err := pool.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
							failures.Add(1)
							t.Errorf("pooled query during rotation: %v", err)
							return
						}
						queries.Add(1)
					}
				})
			}

			res, err := f.rot.Rotate(ctx, name)
			close(stop)
			wg.Wait()
			if err != nil {
				t.Fatalf("rotate: %v", err)
			}
			if res.Username != r.role || res.Secret != name {
				t.Errorf("result %+v: want secret %s, user %s", res, name, r.role)
			}
			if queries.Load() == 0 || failures.Load() != 0 {
				t.Errorf("pool during rotation: %d queries, %d failures; want some and none", queries.Load(), failures.Load())
			}

			for i, c := range held {
				var pid uint32
				if err := c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
					t.Errorf("connection opened before the rotation broke: %v", err)
				} else if pid != pids[i] {
					t.Errorf("held connection has backend %d, want %d (the same session)", pid, pids[i])
				}
				c.Release()
			}
			// Force new connections through the pool: they log in with the new AWSCURRENT.
			pool.Reset()
			var user string
			if err := pool.QueryRow(ctx, "SELECT current_user").Scan(&user); err != nil || user != r.role {
				t.Errorf("new pooled connection after rotation: user %q, err %v", user, err)
			}

			cur := f.secret(t, name, secretstore.Current)
			prev := f.secret(t, name, secretstore.Previous)
			if cur.Password == old.Password {
				t.Fatal("AWSCURRENT still holds the old password")
			}
			if prev.Password != old.Password || prev.Username != old.Username || cur.Username != old.Username ||
				cur.Host != old.Host || cur.Port != old.Port || cur.DBName != old.DBName || cur.Engine != old.Engine {
				t.Error("AWSPREVIOUS is not the old secret, or AWSCURRENT changed more than the password")
			}
			if v, _ := f.store.Get(name, secretstore.Previous); v.VersionID != oldVersion.VersionID {
				t.Errorf("AWSPREVIOUS is version %s, want the old current %s", v.VersionID, oldVersion.VersionID)
			}
			if v, _ := f.store.Get(name, secretstore.Current); v.VersionID != res.VersionID {
				t.Errorf("AWSCURRENT is version %s, want %s", v.VersionID, res.VersionID)
			}
			if _, err := f.store.Get(name, secretstore.Pending); !errors.Is(err, secretstore.ErrNotFound) {
				t.Errorf("AWSPENDING after finishSecret: %v, want none", err)
			}
			if err := f.login(cur); err != nil {
				t.Errorf("new connection with the new password: %v", err)
			}
			if err := f.login(old); !isAuthFailure(err) {
				t.Errorf("new connection with the old password: %v, want refused (28P01)", err)
			}
			if fi, err := os.Stat(f.store.Path(name)); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("secret file mode: %v %v, want 0600", fi, err)
			}
			noSecretIn(t, "rotation log", f.logs.String(), old.Password, cur.Password)
			serverLog, _ := os.ReadFile(f.srv.LogFile)
			// pgaudit records the ALTER ROLE, redacted, as a CSV field (quotes doubled); the
			// statement log must not record it.
			audited := "ALTER ROLE " + strings.ReplaceAll(pgx.Identifier{r.role}.Sanitize(), `"`, `""`) + " PASSWORD <REDACTED>"
			if !strings.Contains(string(serverLog), audited) {
				t.Error("the server log has no audit record of the ALTER ROLE: logging did not apply, the next checks prove nothing")
			}
			noSecretIn(t, "server log", string(serverLog), old.Password, cur.Password, "SCRAM-SHA-256$")
		})
	}
}

// TestRotateFailedStepKeepsCurrent makes each step fail for real and checks that AWSCURRENT still
// logs in, that the error names the step and holds no password, and that a failure after the
// database took the new password is rolled back.
func TestRotateFailedStepKeepsCurrent(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// A non-superuser without CREATEROLE may not change another role's password.
	weakName := f.addRole(t, "weak_admin", "")
	weak := f.secret(t, weakName, secretstore.Current)
	closedPort := func() int {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().(*net.TCPAddr).Port
	}()

	cases := []struct {
		name       string
		role       string // "" = the secret names a role that does not exist
		step       string
		rolledBack bool
		change     func(r *Rotator)
	}{
		{name: "generator fails", role: "r_create", step: StepCreate, change: func(r *Rotator) {
			r.GeneratePassword = func() (string, error) { return "", errors.New("no entropy") }
		}},
		{name: "role missing", step: StepSet},
		{name: "not allowed to alter role", role: "r_set", step: StepSet, change: func(r *Rotator) {
			r.Admin = func(ctx context.Context) (*pgx.Conn, error) { return TLSConnector(f.srv.CAFile)(ctx, weak) }
		}},
		{name: "pending password cannot log in", role: "r_test", step: StepTest, rolledBack: true, change: func(r *Rotator) {
			// testSecret reaches a port where no server listens.
			connect := r.Connect
			r.Connect = func(ctx context.Context, d secretstore.DatabaseSecret) (*pgx.Conn, error) {
				d.Port = closedPort
				return connect(ctx, d)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var name string
			if tc.role == "" {
				name = "dev/aurora-pg/test/ghost"
				if err := f.store.CreateDatabase(name, secretstore.DatabaseSecret{Engine: "postgres", Host: "127.0.0.1", Port: f.srv.Port,
					Username: "ghost", Password: "ghost-password-1234567890", DBName: "postgres"}); err != nil {
					t.Fatal(err)
				}
			} else {
				name = f.addRole(t, tc.role, "")
			}
			before, _ := f.store.Get(name, secretstore.Current)
			old := f.secret(t, name, secretstore.Current)
			rot := *f.rot
			if tc.change != nil {
				tc.change(&rot)
			}
			_, err := rot.Rotate(ctx, name)
			t.Logf("error: %v", err)
			var se *StepError
			if !errors.As(err, &se) {
				t.Fatalf("rotate: %v, want a step error", err)
			}
			if se.Step != tc.step || !strings.Contains(err.Error(), tc.step) || !strings.Contains(err.Error(), name) {
				t.Errorf("error %q: want step %s and secret %s named", err, tc.step, name)
			}
			if se.RolledBack != tc.rolledBack {
				t.Errorf("rolled back = %v, want %v", se.RolledBack, tc.rolledBack)
			}
			after, _ := f.store.Get(name, secretstore.Current)
			if after.VersionID != before.VersionID || after.SecretString != before.SecretString {
				t.Error("AWSCURRENT changed although the rotation failed")
			}
			pending, _ := f.store.GetDatabase(name, secretstore.Pending)
			noSecretIn(t, "error", err.Error(), old.Password, pending.Password)
			noSecretIn(t, "rotation log", f.logs.String(), old.Password, pending.Password)
			if tc.role == "" {
				return
			}
			if err := f.login(old); err != nil {
				t.Errorf("AWSCURRENT no longer logs in: %v", err)
			}
			if pending.Password != "" {
				if err := f.login(pending); !isAuthFailure(err) {
					t.Errorf("the failed pending password: %v, want refused (28P01)", err)
				}
			}
		})
	}

	// A later rotation of a secret whose rotation failed succeeds (the stale AWSPENDING is replaced).
	t.Run("retry after failure", func(t *testing.T) {
		name := "dev/aurora-pg/test/r_test"
		old := f.secret(t, name, secretstore.Current)
		if _, err := f.rot.Rotate(ctx, name); err != nil {
			t.Fatalf("rotate again: %v", err)
		}
		cur := f.secret(t, name, secretstore.Current)
		if err := f.login(cur); err != nil {
			t.Errorf("new password: %v", err)
		}
		if err := f.login(old); !isAuthFailure(err) {
			t.Errorf("old password: %v, want refused", err)
		}
	})
}
