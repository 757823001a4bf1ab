package bootstrap_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/internal/bootstrap"
	"github.com/apgstack/apgstack/internal/testkit/pgtest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const db = "appdb"

func start(t *testing.T, opts ...pgtest.Option) *pgtest.Server {
	t.Helper()
	t.Parallel()
	s := pgtest.Start(t, opts...)
	s.CreateDatabase(t, db)
	return s
}

func options(schema string) bootstrap.Options {
	o, rw, ro := bootstrap.RoleNames(schema)
	return bootstrap.Options{
		Schema:    schema,
		Owner:     bootstrap.Role{Name: o, Password: "owner-pw-Aa1"},
		ReadWrite: bootstrap.Role{Name: rw, Password: "rw-pw-Bb2"},
		ReadOnly:  bootstrap.Role{Name: ro, Password: "ro-pw-Cc3"},
	}
}

func run(t *testing.T, conn *pgx.Conn, o bootstrap.Options) bootstrap.Report {
	t.Helper()
	rep, err := bootstrap.Run(context.Background(), conn, o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return rep
}

// exec runs sql as a role and returns the SQLSTATE of the failure ("" on success).
func exec(t *testing.T, conn *pgx.Conn, sql string) string {
	t.Helper()
	_, err := conn.Exec(context.Background(), sql)
	if err == nil {
		return ""
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	t.Fatalf("%s: %v", sql, err)
	return ""
}

const denied = "42501" // insufficient_privilege

func TestDefaultOptions(t *testing.T) {
	d := apgstack.Default().Database
	o := bootstrap.DefaultOptions(d)
	if o.Schema != "aurorapostgresdb" || o.Owner.Name != "aurorapostgresdb_owner" || o.ReadWrite.Name != "aurorapostgresdb_rw" || o.ReadOnly.Name != "aurorapostgresdb_ro" {
		t.Errorf("DefaultOptions = %+v", o)
	}
	if !slices.Equal(o.Extensions, []string{"pg_stat_statements", "pgaudit"}) || o.Owner.Password != "" {
		t.Errorf("DefaultOptions extensions/passwords = %+v", o)
	}
}

func TestValidate(t *testing.T) {
	long := strings.Repeat("s", 60)
	for _, tc := range []struct {
		name string
		edit func(*bootstrap.Options)
		want string
	}{
		{"empty schema", func(o *bootstrap.Options) { o.Schema = "" }, "schema is empty"},
		{"long role", func(o *bootstrap.Options) { *o = options(long) }, "at most 63 bytes"},
		{"same roles", func(o *bootstrap.Options) { o.ReadOnly.Name = o.ReadWrite.Name }, "must differ"},
		{"non-ascii password", func(o *bootstrap.Options) { o.ReadOnly.Password = "pässwort" }, "printable ASCII"},
		{"clone too long", func(o *bootstrap.Options) { *o = options(strings.Repeat("s", 52)); o.Clones = true }, "owner role clone"},
		{"clone named by the secret too long", func(o *bootstrap.Options) {
			*o = options(strings.Repeat("s", 52))
			o.Owner.Login = bootstrap.CloneName(o.Owner.Name)
		}, "at most 63 bytes"},
		{"foreign login", func(o *bootstrap.Options) { o.Owner.Login = "someone" }, `allowed are "app_owner" and "app_owner_clone"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := options("app")
			tc.edit(&o)
			err := o.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "pässwort") {
				t.Error("error shows the password")
			}
		})
	}
}

func TestPrivilegeMatrix(t *testing.T) {
	s := start(t, pgtest.WithSetting("log_statement", "ddl"), pgtest.WithSetting("pgaudit.log", "ddl,role"))
	o := options("app")
	rep := run(t, s.Conn(t, db), o)
	for _, want := range []string{"extension pg_stat_statements", "extension pgaudit", "schema app", "role app_owner", "role app_rw", "role app_ro"} {
		if !slices.Contains(rep.Created, want) {
			t.Errorf("Created = %q, want %q in it", rep.Created, want)
		}
	}

	owner := s.ConnAs(t, o.Owner.Name, o.Owner.Password, db)
	rw := s.ConnAs(t, o.ReadWrite.Name, o.ReadWrite.Password, db)
	ro := s.ConnAs(t, o.ReadOnly.Name, o.ReadOnly.Password, db)

	// The owner creates a table after the bootstrap: default privileges must reach it.
	for _, sql := range []string{
		"CREATE TABLE app.t (id serial PRIMARY KEY, v text)",
		"INSERT INTO app.t (v) VALUES ('owner')",
	} {
		if code := exec(t, owner, sql); code != "" {
			t.Fatalf("owner: %s: SQLSTATE %s", sql, code)
		}
	}
	for _, tc := range []struct {
		who  string
		conn *pgx.Conn
		sql  string
		want string // SQLSTATE, "" for success
	}{
		{"rw", rw, "INSERT INTO app.t (v) VALUES ('rw')", ""}, // also needs the sequence
		{"rw", rw, "UPDATE app.t SET v = 'rw2' WHERE v = 'rw'", ""},
		{"rw", rw, "SELECT * FROM app.t", ""},
		{"rw", rw, "DELETE FROM app.t WHERE v = 'rw2'", ""},
		{"rw", rw, "CREATE TABLE app.x (i int)", denied},
		{"rw", rw, "CREATE TABLE public.x (i int)", denied},
		{"rw", rw, "DROP TABLE app.t", denied},
		{"rw", rw, "TRUNCATE app.t", denied},
		{"ro", ro, "SELECT * FROM app.t", ""},
		{"ro", ro, "INSERT INTO app.t (v) VALUES ('ro')", denied},
		{"ro", ro, "UPDATE app.t SET v = 'x'", denied},
		{"ro", ro, "DELETE FROM app.t", denied},
		{"ro", ro, "CREATE TABLE app.x (i int)", denied},
		{"ro", ro, "CREATE TABLE public.x (i int)", denied},
		{"owner", owner, "CREATE TABLE app.y (i int)", ""},
		{"owner", owner, "ALTER TABLE app.y ADD COLUMN j int", ""},
		{"owner", owner, "DROP TABLE app.y", ""},
		{"owner", owner, "CREATE TABLE public.x (i int)", denied},
	} {
		if got := exec(t, tc.conn, tc.sql); got != tc.want {
			t.Errorf("%s: %s: SQLSTATE %q, want %q", tc.who, tc.sql, got, tc.want)
		}
	}

	// The passwords never reach the server in plain text, even with DDL and role auditing on.
	log, err := os.ReadFile(s.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "CREATE ROLE") {
		t.Fatalf("server log has no CREATE ROLE statement; is log_statement=ddl in effect?")
	}
	for _, r := range []bootstrap.Role{o.Owner, o.ReadWrite, o.ReadOnly} {
		if strings.Contains(string(log), r.Password) {
			t.Errorf("server log holds the password of %s", r.Name)
		}
	}
}

func TestIdempotentAndPasswordChange(t *testing.T) {
	s := start(t)
	conn := s.Conn(t, db)
	o := options("app")
	if rep := run(t, conn, o); rep.Empty() {
		t.Fatal("first run reported no changes")
	}
	if rep := run(t, conn, o); !rep.Empty() {
		t.Errorf("second run changed things: %+v", rep)
	}
	// A new password is a change, and works.
	o.ReadOnly.Password = "new-ro-pw-Dd4"
	rep := run(t, conn, o)
	if !slices.Equal(rep.Changed, []string{"role app_ro: password"}) || len(rep.Created) != 0 {
		t.Errorf("password change: %+v", rep)
	}
	s.ConnAs(t, o.ReadOnly.Name, o.ReadOnly.Password, db)
	// No passwords: the existing ones stay.
	o2 := options("app")
	o2.Owner.Password, o2.ReadWrite.Password, o2.ReadOnly.Password = "", "", ""
	if rep := run(t, conn, o2); !rep.Empty() {
		t.Errorf("run without passwords changed things: %+v", rep)
	}
	s.ConnAs(t, o.ReadOnly.Name, o.ReadOnly.Password, db)
}

func TestConverges(t *testing.T) {
	s := start(t)
	conn := s.Conn(t, db)
	o := options("app")
	run(t, conn, o)
	owner := s.ConnAs(t, o.Owner.Name, o.Owner.Password, db)
	exec(t, owner, "CREATE TABLE app.t (id serial PRIMARY KEY, v text)")
	// A table created by someone else (the superuser) before the next run.
	exec(t, conn, "CREATE TABLE app.other (i int)")

	for _, sql := range []string{
		"REVOKE SELECT ON app.t FROM app_ro",
		"REVOKE INSERT ON app.t FROM app_rw",
		"REVOKE USAGE ON SCHEMA app FROM app_rw",
		"ALTER DEFAULT PRIVILEGES FOR ROLE app_owner IN SCHEMA app REVOKE SELECT ON TABLES FROM app_ro",
		"ALTER DEFAULT PRIVILEGES FOR ROLE app_owner IN SCHEMA app REVOKE USAGE ON SEQUENCES FROM app_rw",
		"GRANT CREATE ON SCHEMA app TO app_rw",
		"GRANT CREATE ON SCHEMA public TO PUBLIC",
		"GRANT USAGE ON SCHEMA public TO app_ro",
		"ALTER ROLE app_ro NOLOGIN",
		"ALTER ROLE app_rw CREATEDB",
		"DROP EXTENSION pg_stat_statements",
	} {
		if code := exec(t, conn, sql); code != "" {
			t.Fatalf("%s: SQLSTATE %s", sql, code)
		}
	}
	rep := run(t, conn, o)
	if len(rep.Changed) < 10 || !slices.Contains(rep.Created, "extension pg_stat_statements") {
		t.Errorf("convergence run reported too little: %+v", rep)
	}
	if rep := run(t, conn, o); !rep.Empty() {
		t.Errorf("run after convergence changed things: %+v", rep)
	}
	rw := s.ConnAs(t, o.ReadWrite.Name, o.ReadWrite.Password, db)
	ro := s.ConnAs(t, o.ReadOnly.Name, o.ReadOnly.Password, db)
	for _, tc := range []struct {
		conn      *pgx.Conn
		sql, want string
	}{
		{rw, "INSERT INTO app.t (v) VALUES ('x')", ""},
		{rw, "INSERT INTO app.other VALUES (1)", ""},
		{rw, "CREATE TABLE app.x (i int)", denied},
		{rw, "CREATE DATABASE x", denied},
		{ro, "SELECT * FROM app.t", ""},
		{ro, "SELECT * FROM app.other", ""},
		{ro, "CREATE TABLE public.x (i int)", denied},
	} {
		if got := exec(t, tc.conn, tc.sql); got != tc.want {
			t.Errorf("%s: SQLSTATE %q, want %q", tc.sql, got, tc.want)
		}
	}
	// Later tables again reach both roles (default privileges restored).
	exec(t, owner, "CREATE TABLE app.later (id serial PRIMARY KEY)")
	if got := exec(t, rw, "INSERT INTO app.later DEFAULT VALUES"); got != "" {
		t.Errorf("rw insert into later table: %s", got)
	}
	if got := exec(t, ro, "SELECT * FROM app.later"); got != "" {
		t.Errorf("ro select from later table: %s", got)
	}
}

func TestHostileNames(t *testing.T) {
	s := start(t)
	conn := s.Conn(t, db)
	schema := `we"ird; drop`
	o := options(schema)
	o.ReadWrite.Password = `pa'ss\wo"rd; --`
	run(t, conn, o)
	if rep := run(t, conn, o); !rep.Empty() {
		t.Errorf("second run changed things: %+v", rep)
	}
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema).Scan(&n); err != nil || n != 1 {
		t.Fatalf("schema %q: count %d, %v", schema, n, err)
	}
	owner := s.ConnAs(t, o.Owner.Name, o.Owner.Password, db)
	tbl := pgx.Identifier{schema, "t"}.Sanitize()
	if code := exec(t, owner, "CREATE TABLE "+tbl+" (i int)"); code != "" {
		t.Fatalf("owner create: %s", code)
	}
	rw := s.ConnAs(t, o.ReadWrite.Name, o.ReadWrite.Password, db)
	if code := exec(t, rw, "INSERT INTO "+tbl+" VALUES (1)"); code != "" {
		t.Errorf("rw insert: %s", code)
	}
}

func TestExtensions(t *testing.T) {
	t.Run("missing", func(t *testing.T) {
		s := start(t)
		conn := s.Conn(t, db)
		o := options("app")
		o.Extensions = []string{"pg_stat_statements", "no_such_ext"}
		_, err := bootstrap.Run(context.Background(), conn, o)
		if err == nil || !strings.Contains(err.Error(), `"no_such_ext"`) {
			t.Fatalf("Run = %v, want an error naming no_such_ext", err)
		}
		// Nothing was left half done: the transaction rolled back.
		var n int
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_namespace WHERE nspname = 'app'").Scan(&n); err != nil || n != 0 {
			t.Errorf("schema left behind: %d %v", n, err)
		}
		o.Optional = []string{"no_such_ext"}
		rep := run(t, conn, o)
		if !slices.Equal(rep.MissingOptional, []string{"no_such_ext"}) {
			t.Errorf("MissingOptional = %q", rep.MissingOptional)
		}
	})
	t.Run("pgaudit not preloaded", func(t *testing.T) {
		s := start(t, pgtest.WithPreload("pg_stat_statements"))
		conn := s.Conn(t, db)
		o := options("app")
		_, err := bootstrap.Run(context.Background(), conn, o)
		if err == nil || !strings.Contains(err.Error(), `"pgaudit"`) {
			t.Fatalf("Run = %v, want an error naming pgaudit", err)
		}
		o.Optional = []string{"pgaudit"}
		rep := run(t, conn, o)
		if !slices.Equal(rep.MissingOptional, []string{"pgaudit"}) || !slices.Contains(rep.Created, "extension pg_stat_statements") {
			t.Errorf("report = %+v", rep)
		}
	})
}

// TestNonSuperuserAdmin runs the bootstrap as Aurora's master user is: not a superuser, but with
// CREATEROLE and owning the database, unable to read pg_authid. The extensions are created
// beforehand (Aurora lets rds_superuser create them; plain PostgreSQL wants a superuser).
func TestNonSuperuserAdmin(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	super := s.Conn(t, db)
	for _, sql := range []string{
		"CREATE ROLE admin LOGIN CREATEROLE CREATEDB PASSWORD 'admin-pw-Zz9'",
		"ALTER DATABASE appdb OWNER TO admin",
		"CREATE EXTENSION pg_stat_statements",
		"CREATE EXTENSION pgaudit",
	} {
		if _, err := super.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	admin := s.ConnAs(t, "admin", "admin-pw-Zz9", db)
	o := options("app")
	rep := run(t, admin, o)
	if !slices.Contains(rep.Changed, "grant role app_owner to current user") {
		t.Errorf("first run as admin: %+v", rep)
	}
	// Passwords cannot be compared without pg_authid: set again, not counted.
	if rep := run(t, admin, o); !rep.Empty() {
		t.Errorf("second run as admin changed things: %+v", rep)
	}
	owner := s.ConnAs(t, o.Owner.Name, o.Owner.Password, db)
	exec(t, owner, "CREATE TABLE app.t (i int)")
	ro := s.ConnAs(t, o.ReadOnly.Name, o.ReadOnly.Password, db)
	if code := exec(t, ro, "SELECT * FROM app.t"); code != "" {
		t.Errorf("ro select: %s", code)
	}
}
