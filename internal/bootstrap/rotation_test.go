package bootstrap_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/apgstack/apgstack/internal/bootstrap"
	"github.com/apgstack/apgstack/internal/testkit/pgtest"
	"github.com/jackc/pgx/v5"
)

// rotateMultiUser runs what AWS's SecretsManagerRDSPostgreSQLRotationMultiUser does in its
// set_secret step, logged in as the master user: the clone is created and granted the role when
// it does not exist, else only its password is set.
func rotateMultiUser(t *testing.T, master *pgx.Conn, role, password string) string {
	t.Helper()
	ctx := context.Background()
	clone := role + "_clone"
	q := func(s string) string { return pgx.Identifier{s}.Sanitize() }
	var n int
	if err := master.QueryRow(ctx, "SELECT count(*) FROM pg_roles WHERE rolname = $1", clone).Scan(&n); err != nil {
		t.Fatal(err)
	}
	stmts := []string{"ALTER USER " + q(clone) + " WITH PASSWORD '" + password + "'"}
	if n == 0 {
		stmts = []string{"CREATE ROLE " + q(clone) + " WITH LOGIN PASSWORD '" + password + "'", "GRANT " + q(role) + " TO " + q(clone)}
	}
	for _, s := range stmts {
		if _, err := master.Exec(ctx, s); err != nil {
			t.Fatalf("rotation of %s: %v", role, err)
		}
	}
	return clone
}

// identity is one login of an application role.
type identity struct{ name, password string }

// checkAccess proves that every identity of the read-write role can read and write table, and
// every identity of the read-only role can read it and not write it.
func checkAccess(t *testing.T, s *pgtest.Server, table string, rw, ro []identity) {
	t.Helper()
	for _, id := range rw {
		c := s.ConnAs(t, id.name, id.password, db)
		for _, sql := range []string{
			fmt.Sprintf("INSERT INTO %s (v) VALUES ('%s')", table, id.name), // and the sequence
			"SELECT count(*) FROM " + table,
			fmt.Sprintf("UPDATE %s SET v = v WHERE v = '%s'", table, id.name),
			fmt.Sprintf("DELETE FROM %s WHERE v = '%s'", table, id.name),
		} {
			if code := exec(t, c, sql); code != "" {
				t.Errorf("%s: %s: SQLSTATE %s", id.name, sql, code)
			}
		}
	}
	for _, id := range ro {
		c := s.ConnAs(t, id.name, id.password, db)
		if code := exec(t, c, "SELECT count(*) FROM "+table); code != "" {
			t.Errorf("%s: select %s: SQLSTATE %s", id.name, table, code)
		}
		if code := exec(t, c, fmt.Sprintf("INSERT INTO %s (v) VALUES ('ro')", table)); code != denied {
			t.Errorf("%s: insert into %s: SQLSTATE %q, want %s", id.name, table, code, denied)
		}
	}
}

func owner(t *testing.T, conn *pgx.Conn, table string) string {
	t.Helper()
	var o string
	if err := conn.QueryRow(context.Background(), "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = $1::regclass", table).Scan(&o); err != nil {
		t.Fatal(err)
	}
	return o
}

// TestMultiUserRotationKeepsPrivileges rotates all three secrets the way AWS's multi-user
// function does, on a real server, after a bootstrap that prepares the clones (as the Lambda's
// does): tables the owner's clone creates belong to the owner, and every identity of the
// read-write and read-only roles can use them. It runs with a superuser and with an Aurora-like
// master user (CREATEROLE, not a superuser).
func TestMultiUserRotationKeepsPrivileges(t *testing.T) {
	for _, superuser := range []bool{true, false} {
		t.Run(fmt.Sprintf("superuser=%v", superuser), func(t *testing.T) {
			s := start(t)
			master := s.Conn(t, db)
			if !superuser {
				master = auroraLikeMaster(t, s)
			}
			o := options("app")
			o.Clones = true
			rep := run(t, master, o)
			for _, want := range []string{"role app_owner_clone", "role app_rw_clone", "role app_ro_clone"} {
				if !slices.Contains(rep.Created, want) {
					t.Errorf("Created = %q, want %q in it", rep.Created, want)
				}
			}
			if rep := run(t, master, o); !rep.Empty() {
				t.Errorf("second run changed things: %+v", rep)
			}
			ownerClone := rotateMultiUser(t, master, o.Owner.Name, "owner-clone-pw-1")
			rwClone := rotateMultiUser(t, master, o.ReadWrite.Name, "rw-clone-pw-2")
			roClone := rotateMultiUser(t, master, o.ReadOnly.Name, "ro-clone-pw-3")

			oc := s.ConnAs(t, ownerClone, "owner-clone-pw-1", db)
			if code := exec(t, oc, "CREATE TABLE app.made_by_clone (id serial PRIMARY KEY, v text)"); code != "" {
				t.Fatalf("owner clone: create table: SQLSTATE %s", code)
			}
			if got := owner(t, master, "app.made_by_clone"); got != o.Owner.Name {
				t.Errorf("table created by %s belongs to %s, want %s", ownerClone, got, o.Owner.Name)
			}
			rw := []identity{{o.ReadWrite.Name, o.ReadWrite.Password}, {rwClone, "rw-clone-pw-2"}}
			ro := []identity{{o.ReadOnly.Name, o.ReadOnly.Password}, {roClone, "ro-clone-pw-3"}}
			checkAccess(t, s, "app.made_by_clone", rw, ro)

			// The next stack update reads the clones' names from the secrets: the bootstrap
			// keeps the roles, the schema's owner and the privileges, and changes nothing.
			for _, r := range []*bootstrap.Role{&o.Owner, &o.ReadWrite, &o.ReadOnly} {
				r.Login = bootstrap.CloneName(r.Name)
			}
			o.Owner.Password, o.ReadWrite.Password, o.ReadOnly.Password = "owner-clone-pw-1", "rw-clone-pw-2", "ro-clone-pw-3"
			if rep := run(t, master, o); superuser && !rep.Empty() {
				t.Errorf("bootstrap with the clones' secrets changed things: %+v", rep)
			}
			var schemaOwner string
			if err := master.QueryRow(context.Background(), "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'app'").Scan(&schemaOwner); err != nil || schemaOwner != "app_owner" {
				t.Errorf("schema owner %q (%v), want app_owner", schemaOwner, err)
			}
			// The rotation swings back to the original identities.
			exec(t, master, "ALTER USER app_owner WITH PASSWORD 'owner-pw-2'")
			own := s.ConnAs(t, "app_owner", "owner-pw-2", db)
			if code := exec(t, own, "CREATE TABLE app.made_by_owner (id serial PRIMARY KEY, v text)"); code != "" {
				t.Fatalf("owner: create table: SQLSTATE %s", code)
			}
			checkAccess(t, s, "app.made_by_owner", rw, ro)
		})
	}
}

// TestCloneFromEarlierRotationConverges: a clone made by the rotation before the bootstrap knew of
// clones (the exact statements of AWS's function) creates a table that belongs to it; the next
// bootstrap, given the secret that now names the clone, hands the clone's objects to the owner,
// makes the clone act as the owner, and the read-write and read-only identities can use all of
// it.
func TestCloneFromEarlierRotationConverges(t *testing.T) {
	s := start(t)
	master := s.Conn(t, db)
	o := options("app")
	run(t, master, o)
	for _, sql := range []string{
		"CREATE ROLE app_owner_clone WITH LOGIN PASSWORD 'owner-clone-pw-1'", "GRANT app_owner TO app_owner_clone",
		"CREATE ROLE app_rw_clone WITH LOGIN PASSWORD 'rw-clone-pw-2'", "GRANT app_rw TO app_rw_clone",
		"CREATE ROLE app_ro_clone WITH LOGIN PASSWORD 'ro-clone-pw-3'", "GRANT app_ro TO app_ro_clone",
	} {
		if code := exec(t, master, sql); code != "" {
			t.Fatalf("%s: SQLSTATE %s", sql, code)
		}
	}
	oc := s.ConnAs(t, "app_owner_clone", "owner-clone-pw-1", db)
	exec(t, oc, "CREATE TABLE app.early (id serial PRIMARY KEY, v text)")
	if got := owner(t, master, "app.early"); got != "app_owner_clone" {
		t.Fatalf("before the bootstrap the clone's table belongs to %s: the test no longer shows the defect", got)
	}
	// What the earlier custom resource did with the clone's name from the secret.
	exec(t, master, "ALTER SCHEMA app OWNER TO app_owner_clone")

	o.Owner = bootstrap.Role{Name: "app_owner", Login: "app_owner_clone", Password: "owner-clone-pw-1"}
	rep := run(t, master, o)
	for _, want := range []string{"role app_owner_clone: acts as app_owner (SET role)", "objects owned by app_owner_clone: owner app_owner"} {
		if !slices.Contains(rep.Changed, want) {
			t.Errorf("Changed = %q, want %q in it", rep.Changed, want)
		}
	}
	if got := owner(t, master, "app.early"); got != "app_owner" {
		t.Errorf("after the bootstrap app.early belongs to %s, want app_owner", got)
	}
	rw := []identity{{"app_rw", "rw-pw-Bb2"}, {"app_rw_clone", "rw-clone-pw-2"}}
	ro := []identity{{"app_ro", "ro-pw-Cc3"}, {"app_ro_clone", "ro-clone-pw-3"}}
	checkAccess(t, s, "app.early", rw, ro)
	oc = s.ConnAs(t, "app_owner_clone", "owner-clone-pw-1", db)
	exec(t, oc, "CREATE TABLE app.later (id serial PRIMARY KEY, v text)")
	checkAccess(t, s, "app.later", rw, ro)
	if rep := run(t, master, o); !rep.Empty() {
		t.Errorf("second run changed things: %+v", rep)
	}
}

// auroraLikeMaster is a master user as Aurora makes it: CREATEROLE and CREATEDB, owner of the
// database, not a superuser.
func auroraLikeMaster(t *testing.T, s *pgtest.Server) *pgx.Conn {
	t.Helper()
	super := s.Conn(t, db)
	for _, sql := range []string{
		"CREATE ROLE admin LOGIN CREATEROLE CREATEDB PASSWORD 'admin-pw-Zz9'",
		"ALTER DATABASE appdb OWNER TO admin",
		"CREATE EXTENSION pg_stat_statements",
		"CREATE EXTENSION pgaudit",
	} {
		if code := exec(t, super, sql); code != "" {
			t.Fatalf("%s: SQLSTATE %s", sql, code)
		}
	}
	return s.ConnAs(t, "admin", "admin-pw-Zz9", db)
}
