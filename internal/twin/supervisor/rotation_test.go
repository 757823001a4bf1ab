package supervisor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apgstack/apgstack/internal/bootstrap"
	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/secretstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// secretsOf opens the twin's secret store.
func secretsOf(t *testing.T, dir string) *secretstore.Store {
	t.Helper()
	store, err := secretstore.Open(Layout{Root: dir}.SecretsDir())
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// loginWith connects through the writer endpoint with a secret, TLS verify-full.
func loginWith(t *testing.T, dir string, d secretstore.DatabaseSecret) error {
	t.Helper()
	cc, err := pgx.ParseConfig(fmt.Sprintf("host=localhost port=%d dbname=%s user=%s sslmode=verify-full sslrootcert=%s connect_timeout=10",
		d.Port, d.DBName, d.Username, Layout{Root: dir}.CABundle()))
	if err != nil {
		t.Fatal(err)
	}
	cc.Password = d.Password
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return err
	}
	return c.Close(ctx)
}

func refused(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "28P01"
}

// TestScheduledRotation runs a twin whose secrets rotate every few seconds while a pool of the
// read-write role keeps sessions open through the writer endpoint: the master's and every
// application role's AWSCURRENT changes, held sessions keep working, new sessions log in with
// AWSCURRENT, the previous password is refused, and each rotation is an event.
func TestScheduledRotation(t *testing.T) {
	cfg := testConfig(t, "dev")
	cfg.Target.Local.RotationInterval = "3s"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tw := up(t, cfg, stateDir(t))
	store := secretsOf(t, tw.dir)
	base := tw.status.Outputs.SecretName
	_, rw, _ := bootstrap.RoleNames(cfg.Database.SchemaName())
	rwSecret := base + "/" + rw
	first := map[string]string{}
	for _, n := range []string{base, rwSecret} {
		v, err := store.Get(n, secretstore.Current)
		if err != nil {
			t.Fatal(err)
		}
		first[n] = v.VersionID
	}

	pcfg, err := pgxpool.ParseConfig(fmt.Sprintf("host=localhost port=%d dbname=%s user=%s sslmode=verify-full sslrootcert=%s",
		cfg.Database.Port, cfg.Database.Name, rw, Layout{Root: tw.dir}.CABundle()))
	if err != nil {
		t.Fatal(err)
	}
	pcfg.MinConns = 3
	pcfg.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
		d, err := store.GetDatabase(rwSecret, secretstore.Current)
		cc.Password = d.Password
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	held, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pid := held.Conn().PgConn().PID()

	// Wait for two rotations of each secret, querying through the pool all along.
	for {
		var one int
		if err := pool.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
			t.Fatalf("pooled query during rotations: %v", err)
		}
		done := true
		for _, n := range []string{base, rwSecret} {
			sec, err := store.Describe(n)
			if err != nil {
				t.Fatal(err)
			}
			cur, _ := store.Get(n, secretstore.Current)
			prev, perr := store.Get(n, secretstore.Previous)
			// Two rotations: neither the current nor the previous version is the first.
			done = done && cur.VersionID != first[n] && perr == nil && prev.VersionID != first[n] && len(sec.Versions) >= 2
		}
		if done {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("secrets did not rotate twice: %v", ctx.Err())
		}
		time.Sleep(100 * time.Millisecond)
	}
	var got uint32
	if err := held.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&got); err != nil || got != pid {
		t.Errorf("session held across rotations: pid %d, %v; want %d", got, err, pid)
	}
	held.Release()
	pool.Reset()
	// A session opened while a rotation is between setSecret and finishSecret is refused: the
	// single-user strategy's known window (rotations run every 3 s here). It is tried again.
	var user string
	for attempt := 1; ; attempt++ {
		err := pool.QueryRow(ctx, "SELECT current_user").Scan(&user)
		if err == nil && user == rw {
			break
		}
		if attempt == 3 {
			t.Fatalf("new pooled session: %q, %v", user, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Stop rotating before comparing passwords, so the next rotation cannot race the checks.
	tw.down()
	still := cfg
	still.Target.Local.RotationInterval = ""
	up(t, still, tw.dir)
	for _, n := range []string{base, rwSecret} {
		cur, err := store.GetDatabase(n, secretstore.Current)
		if err != nil {
			t.Fatal(err)
		}
		prev, err := store.GetDatabase(n, secretstore.Previous)
		if err != nil {
			t.Fatal(err)
		}
		if err := loginWith(t, tw.dir, cur); err != nil {
			t.Errorf("%s: AWSCURRENT: %v", n, err)
		}
		if err := loginWith(t, tw.dir, prev); !refused(err) {
			t.Errorf("%s: AWSPREVIOUS: %v, want refused", n, err)
		}
	}
	events, _ := ReadEvents(Layout{Root: tw.dir})
	rotated := 0
	for _, ev := range events {
		if strings.Contains(ev.Message, "secret "+base+" rotated") {
			rotated++
		}
	}
	if rotated < 2 {
		t.Errorf("%d rotation events for %s, want at least 2", rotated, base)
	}
}

// TestRotateSecretAPI rotates on demand through the API: all four secrets; an unknown role is
// refused; a rotation that fails (the role renamed away) is reported and an event, and leaves
// AWSCURRENT working.
func TestRotateSecretAPI(t *testing.T) {
	cfg := testConfig(t, "dev")
	tw := up(t, cfg, stateDir(t))
	store := secretsOf(t, tw.dir)
	c := api.NewClient(Layout{Root: tw.dir}.Socket())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	before := map[string]secretstore.DatabaseSecret{}
	base := tw.status.Outputs.SecretName
	owner, rw, ro := bootstrap.RoleNames(cfg.Database.SchemaName())
	names := map[string]string{"master": base, "owner": base + "/" + owner, "rw": base + "/" + rw, "ro": base + "/" + ro}
	for _, n := range names {
		d, err := store.GetDatabase(n, secretstore.Current)
		if err != nil {
			t.Fatal(err)
		}
		before[n] = d
	}
	res, err := c.RotateSecret(ctx, "all")
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 4 {
		t.Fatalf("results %+v, want 4", res)
	}
	for _, r := range res {
		if r.Error != "" || r.Secret != names[r.Role] || r.VersionID == "" {
			t.Errorf("rotation %+v", r)
			continue
		}
		cur, _ := store.GetDatabase(r.Secret, secretstore.Current)
		if r.Username != cur.Username {
			t.Errorf("rotation %+v: user %s", r, cur.Username)
		}
		if err := loginWith(t, tw.dir, cur); err != nil {
			t.Errorf("%s: new password: %v", r.Role, err)
		}
		if err := loginWith(t, tw.dir, before[r.Secret]); !refused(err) {
			t.Errorf("%s: old password: %v, want refused", r.Role, err)
		}
	}

	if _, err := c.RotateSecret(ctx, "admin"); err == nil || !strings.Contains(err.Error(), `role "admin": allowed are master, owner, rw, ro and all`) {
		t.Errorf("unknown role: %v", err)
	}

	// The read-only role renamed away: setSecret fails, AWSCURRENT stays and works again once the
	// role is back (a SCRAM password survives a rename).
	admin := mustConnect(t, tw, cfg.Database.Port)
	if _, err := admin.Exec(ctx, "ALTER ROLE "+pgx.Identifier{ro}.Sanitize()+" RENAME TO gone_ro"); err != nil {
		t.Fatal(err)
	}
	cur, _ := store.Get(names["ro"], secretstore.Current)
	res, err = c.RotateSecret(ctx, "ro")
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || !strings.Contains(res[0].Error, "setSecret") {
		t.Fatalf("failed rotation: %+v, want a setSecret error", res)
	}
	if _, err := admin.Exec(ctx, "ALTER ROLE gone_ro RENAME TO "+pgx.Identifier{ro}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	after, _ := store.Get(names["ro"], secretstore.Current)
	if after.VersionID != cur.VersionID {
		t.Error("AWSCURRENT changed although the rotation failed")
	}
	d, _ := store.GetDatabase(names["ro"], secretstore.Current)
	if err := loginWith(t, tw.dir, d); err != nil {
		t.Errorf("AWSCURRENT after the failed rotation: %v", err)
	}
	pending, _ := store.GetDatabase(names["ro"], secretstore.Pending)
	events, _ := ReadEvents(Layout{Root: tw.dir})
	found := false
	for _, ev := range events {
		if ev.Category == "failure" && strings.Contains(ev.Message, "rotation of secret "+names["ro"]+" failed") {
			found = true
		}
		for _, p := range []string{d.Password, pending.Password} {
			if p != "" && strings.Contains(ev.Message, p) {
				t.Error("an event holds a password")
			}
		}
	}
	if !found {
		t.Errorf("no failure event for the failed rotation")
	}
}
