// Package bootstrap brings a PostgreSQL or Aurora PostgreSQL database to apgstack's first-day
// standard: the best-practice extensions, an application schema, and three least-privilege login
// roles (owner, read-write, read-only). It is idempotent (a second run changes nothing) and
// converges (a grant or role removed by hand comes back on the next run). The Lambda custom
// resource, `apgstack bootstrap` and the local twin all run it.
//
// Passwords: the plain text never reaches the server. Each password is turned into a
// SCRAM-SHA-256 verifier here and sent as the literal of CREATE/ALTER ROLE ... PASSWORD (those
// statements take no bind parameters), so neither log_statement=ddl nor pgaudit's role class can
// record it. Whether the stored password already matches is checked against pg_authid when the
// connected role may read it (a superuser, e.g. the local twin); then the password is only set
// when it differs, and that counts as a change. Aurora's master user cannot read pg_authid: there
// the password is set on every run and, being unverifiable, not counted as a change — so a second
// run still reports no changes.
package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/internal/scram"
	"github.com/jackc/pgx/v5"
)

// Role is one of the three application roles and the password of its login identity. An empty
// Password creates a new role without one and leaves an existing role's password alone.
type Role struct {
	// Name is the role that holds the privileges (and, for the owner, owns the objects).
	Name string
	// Login is the identity the Password belongs to when it is not Name: AWS's multi-user
	// rotation alternates a secret between Name and CloneName(Name). Empty means Name.
	Login    string
	Password string
}

// login is the identity the password belongs to.
func (r Role) login() string {
	if r.Login == "" {
		return r.Name
	}
	return r.Login
}

// Options say what to create.
type Options struct {
	Schema                     string // application schema
	Owner, ReadWrite, ReadOnly Role
	Extensions                 []string // default bestpractice.Extensions
	Optional                   []string // extensions allowed to be missing (reported, not failed)
	// Clones prepares each role's rotation identity CloneName(role) before any rotation needs
	// it (see identities.go). Clones that exist are converged whether or not this is set.
	Clones bool
}

// Report says what a run changed; it never holds a secret.
type Report struct {
	Created         []string `json:"created"`
	Changed         []string `json:"changed"`
	MissingOptional []string `json:"missingOptional"`
}

// Empty reports whether the run changed nothing.
func (r Report) Empty() bool { return len(r.Created) == 0 && len(r.Changed) == 0 }

// RoleNames derives the three role names from the schema name.
func RoleNames(schema string) (owner, readWrite, readOnly string) {
	return schema + "_owner", schema + "_rw", schema + "_ro"
}

// DefaultOptions are the options for a configured database: its schema, the derived role names
// and the best-practice extensions; no passwords.
func DefaultOptions(db apgstack.Database) Options {
	schema := db.SchemaName()
	o, rw, ro := RoleNames(schema)
	return Options{
		Schema:     schema,
		Owner:      Role{Name: o},
		ReadWrite:  Role{Name: rw},
		ReadOnly:   Role{Name: ro},
		Extensions: slices.Clone(bestpractice.Extensions),
	}
}

// maxIdentifier is PostgreSQL's NAMEDATALEN-1: longer names are silently truncated by the
// server, which would break idempotency, so they are refused.
const maxIdentifier = 63

// advisoryLockKey serializes concurrent bootstraps of one database (Lambda and CLI, say).
const advisoryLockKey = 0x61706773_74616b31 // "apgstak1"

// Validate checks the options before anything is touched.
func (o Options) Validate() error {
	var errs []error
	name := func(field, v string) {
		switch {
		case v == "":
			errs = append(errs, fmt.Errorf("%s is empty: a name is required", field))
		case len(v) > maxIdentifier:
			errs = append(errs, fmt.Errorf("%s %q is %d bytes: PostgreSQL names hold at most %d bytes (role names add up to 6 characters to the schema name, their rotation identities up to 12)", field, v, len(v), maxIdentifier))
		case strings.ContainsRune(v, 0):
			errs = append(errs, fmt.Errorf("%s %q contains a NUL byte: not allowed in PostgreSQL names", field, v))
		}
	}
	name("schema", o.Schema)
	for _, r := range []struct {
		field string
		role  Role
	}{{"owner role", o.Owner}, {"read-write role", o.ReadWrite}, {"read-only role", o.ReadOnly}} {
		name(r.field, r.role.Name)
		clone := CloneName(r.role.Name)
		if o.Clones || r.role.login() == clone {
			name(r.field+" clone", clone)
		}
		if l := r.role.login(); l != r.role.Name && l != clone {
			errs = append(errs, fmt.Errorf("%s login %q: allowed are %q and %q (the multi-user rotation's alternate identity)", r.field, l, r.role.Name, clone))
		}
	}
	if o.Owner.Name == o.ReadWrite.Name || o.Owner.Name == o.ReadOnly.Name || o.ReadWrite.Name == o.ReadOnly.Name {
		errs = append(errs, fmt.Errorf("role names %q, %q, %q: the three roles must differ", o.Owner.Name, o.ReadWrite.Name, o.ReadOnly.Name))
	}
	for _, r := range o.roles() {
		// Never print the password itself.
		for _, c := range r.Password {
			if c < 0x20 || c > 0x7e {
				errs = append(errs, fmt.Errorf("password of role %q: only printable ASCII characters are allowed (PostgreSQL normalizes others with SASLprep)", r.Name))
				break
			}
		}
	}
	for _, e := range append(slices.Clone(o.Extensions), o.Optional...) {
		name("extension", e)
	}
	return errors.Join(errs...)
}

func (o Options) roles() []Role { return []Role{o.Owner, o.ReadWrite, o.ReadOnly} }

func (o Options) extensions() []string {
	if o.Extensions == nil {
		return slices.Clone(bestpractice.Extensions)
	}
	return o.Extensions
}

// Run bootstraps the database conn is connected to, in one transaction.
func Run(ctx context.Context, conn *pgx.Conn, opts Options) (Report, error) {
	if err := opts.Validate(); err != nil {
		return Report{}, fmt.Errorf("bootstrap options: %w", err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("bootstrap: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	r := &run{tx: tx, o: opts, ident: func(s string) string { return pgx.Identifier{s}.Sanitize() }}
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(advisoryLockKey)); err != nil {
		return Report{}, fmt.Errorf("bootstrap: lock: %w", err)
	}
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"extensions", r.extensions},
		{"roles", r.roles},
		{"rotation identities", r.identities},
		{"schema", r.schema},
		{"schema privileges", r.schemaPrivileges},
		{"table privileges", r.objectPrivileges},
		{"default privileges", r.defaultPrivileges},
		{"public schema", r.publicSchema},
		{"database privileges", r.databasePrivileges},
	}
	for _, s := range steps {
		if err := s.fn(ctx); err != nil {
			return Report{}, fmt.Errorf("bootstrap %s: %w", s.name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return Report{}, fmt.Errorf("bootstrap: commit: %w", err)
	}
	return r.rep, nil
}

type run struct {
	tx    pgx.Tx
	o     Options
	rep   Report
	ident func(string) string
	// What the connected role may do, read by the roles step.
	canReadAuthid, super bool
}

func (r *run) created(format string, args ...any) {
	r.rep.Created = append(r.rep.Created, fmt.Sprintf(format, args...))
}

func (r *run) changed(format string, args ...any) {
	r.rep.Changed = append(r.rep.Changed, fmt.Sprintf(format, args...))
}

// exec runs a statement built by this package; errors name what was done, never the statement
// (it may carry a password verifier).
func (r *run) exec(ctx context.Context, what, sql string) error {
	if _, err := r.tx.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// execPassword is exec for a statement that carries a password verifier: a superuser runs it with
// statement logging off, so the verifier stays out of the server log (scram.ExecUnlogged).
func (r *run) execPassword(ctx context.Context, what, sql string) error {
	if err := scram.ExecUnlogged(ctx, r.tx, sql); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func (r *run) extensions(ctx context.Context) error {
	for _, ext := range r.o.extensions() {
		var installed, available bool
		err := r.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = $1),
			EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = $1)`, ext).Scan(&installed, &available)
		if err != nil {
			return fmt.Errorf("look up extension %q: %w", ext, err)
		}
		if installed {
			continue
		}
		optional := slices.Contains(r.o.Optional, ext)
		if !available {
			if optional {
				r.rep.MissingOptional = append(r.rep.MissingOptional, ext)
				continue
			}
			return fmt.Errorf("extension %q is not available on this server (not in pg_available_extensions): install it, or mark it optional", ext)
		}
		// A savepoint, so an optional extension that fails to load (pgaudit not preloaded) does
		// not abort the whole transaction.
		sp, err := r.tx.Begin(ctx)
		if err != nil {
			return err
		}
		if _, err := sp.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS "+r.ident(ext)); err != nil {
			_ = sp.Rollback(ctx)
			if optional {
				r.rep.MissingOptional = append(r.rep.MissingOptional, ext)
				continue
			}
			return fmt.Errorf("create extension %q: %w", ext, err)
		}
		if err := sp.Commit(ctx); err != nil {
			return err
		}
		r.created("extension %s", ext)
	}
	return nil
}

func (r *run) schema(ctx context.Context) error {
	var owner string
	err := r.tx.QueryRow(ctx, "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = $1", r.o.Schema).Scan(&owner)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if err := r.exec(ctx, fmt.Sprintf("create schema %q", r.o.Schema),
			"CREATE SCHEMA "+r.ident(r.o.Schema)+" AUTHORIZATION "+r.ident(r.o.Owner.Name)); err != nil {
			return err
		}
		r.created("schema %s", r.o.Schema)
	case err != nil:
		return fmt.Errorf("look up schema %q: %w", r.o.Schema, err)
	case owner != r.o.Owner.Name:
		if err := r.exec(ctx, fmt.Sprintf("give schema %q to %q", r.o.Schema, r.o.Owner.Name),
			"ALTER SCHEMA "+r.ident(r.o.Schema)+" OWNER TO "+r.ident(r.o.Owner.Name)); err != nil {
			return err
		}
		r.changed("schema %s: owner %s (was %s)", r.o.Schema, r.o.Owner.Name, owner)
	}
	return nil
}

// schemaACL lists the explicit privileges on a schema as grantee ("" for PUBLIC) -> privileges.
func (r *run) schemaACL(ctx context.Context, schema string) (map[string][]string, bool, error) {
	rows, err := r.tx.Query(ctx, `SELECT coalesce(pg_get_userbyid(NULLIF(a.grantee, 0)), ''), a.privilege_type
		FROM pg_namespace n CROSS JOIN LATERAL aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
		WHERE n.nspname = $1`, schema)
	if err != nil {
		return nil, false, fmt.Errorf("read privileges of schema %q: %w", schema, err)
	}
	acl := map[string][]string{}
	found := false
	for rows.Next() {
		var grantee, priv string
		if err := rows.Scan(&grantee, &priv); err != nil {
			return nil, false, err
		}
		acl[grantee] = append(acl[grantee], priv)
		found = true
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("read privileges of schema %q: %w", schema, err)
	}
	if !found {
		var exists bool
		if err := r.tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&exists); err != nil {
			return nil, false, err
		}
		return acl, exists, nil
	}
	return acl, true, nil
}

func missing(have, want []string) []string {
	var out []string
	for _, w := range want {
		if !slices.Contains(have, w) {
			out = append(out, w)
		}
	}
	return out
}

func (r *run) schemaPrivileges(ctx context.Context) error {
	acl, _, err := r.schemaACL(ctx, r.o.Schema)
	if err != nil {
		return err
	}
	s := r.ident(r.o.Schema)
	want := []struct {
		role  string
		privs []string
	}{
		{r.o.Owner.Name, []string{"USAGE", "CREATE"}},
		{r.o.ReadWrite.Name, []string{"USAGE"}},
		{r.o.ReadOnly.Name, []string{"USAGE"}},
	}
	for _, w := range want {
		if m := missing(acl[w.role], w.privs); len(m) > 0 {
			list := strings.Join(m, ", ")
			if err := r.exec(ctx, fmt.Sprintf("grant %s on schema %q to %q", list, r.o.Schema, w.role),
				"GRANT "+list+" ON SCHEMA "+s+" TO "+r.ident(w.role)); err != nil {
				return err
			}
			r.changed("grant %s on schema %s to %s", list, r.o.Schema, w.role)
		}
	}
	// Nobody but the owner creates objects in the schema; PUBLIC gets nothing on it.
	for _, role := range []string{r.o.ReadWrite.Name, r.o.ReadOnly.Name} {
		if slices.Contains(acl[role], "CREATE") {
			if err := r.exec(ctx, fmt.Sprintf("revoke CREATE on schema %q from %q", r.o.Schema, role),
				"REVOKE CREATE ON SCHEMA "+s+" FROM "+r.ident(role)); err != nil {
				return err
			}
			r.changed("revoke CREATE on schema %s from %s", r.o.Schema, role)
		}
	}
	if len(acl[""]) > 0 {
		if err := r.exec(ctx, fmt.Sprintf("revoke all on schema %q from PUBLIC", r.o.Schema),
			"REVOKE ALL ON SCHEMA "+s+" FROM PUBLIC"); err != nil {
			return err
		}
		r.changed("revoke %s on schema %s from PUBLIC", strings.Join(acl[""], ", "), r.o.Schema)
	}
	return nil
}

// objectGrant is a privilege set on all existing relations of a kind in the schema, and (the same)
// by default on the ones the owner creates later.
type objectGrant struct {
	kind      string // TABLES or SEQUENCES
	relkinds  string // pg_class.relkind values
	defaclObj string // pg_default_acl.defaclobjtype
	check     string // has_*_privilege function
	role      string
	privs     []string
}

func (r *run) grants() []objectGrant {
	return []objectGrant{
		{"TABLES", "rvmfp", "r", "has_table_privilege", r.o.ReadWrite.Name, []string{"SELECT", "INSERT", "UPDATE", "DELETE"}},
		{"SEQUENCES", "S", "S", "has_sequence_privilege", r.o.ReadWrite.Name, []string{"USAGE", "SELECT", "UPDATE"}},
		{"TABLES", "rvmfp", "r", "has_table_privilege", r.o.ReadOnly.Name, []string{"SELECT"}},
	}
}

func (r *run) objectPrivileges(ctx context.Context) error {
	for _, g := range r.grants() {
		// How many relations of the kind lack at least one of the privileges.
		var lacking int
		err := r.tx.QueryRow(ctx, `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = $1::name AND c.relkind = ANY (string_to_array($2::text, NULL)::"char"[])
			AND NOT (SELECT bool_and(`+g.check+`($3::name, c.oid, p)) FROM unnest($4::text[]) p)`,
			r.o.Schema, g.relkinds, g.role, g.privs).Scan(&lacking)
		if err != nil {
			return fmt.Errorf("check %s privileges of %q: %w", strings.ToLower(g.kind), g.role, err)
		}
		if lacking == 0 {
			continue
		}
		list := strings.Join(g.privs, ", ")
		if err := r.exec(ctx, fmt.Sprintf("grant %s on all %s in schema %q to %q", list, strings.ToLower(g.kind), r.o.Schema, g.role),
			"GRANT "+list+" ON ALL "+g.kind+" IN SCHEMA "+r.ident(r.o.Schema)+" TO "+r.ident(g.role)); err != nil {
			return err
		}
		r.changed("grant %s on %d %s in schema %s to %s", list, lacking, strings.ToLower(g.kind), r.o.Schema, g.role)
	}
	return nil
}

func (r *run) defaultPrivileges(ctx context.Context) error {
	for _, g := range r.grants() {
		var have []string
		err := r.tx.QueryRow(ctx, `SELECT coalesce(array_agg(a.privilege_type::text), '{}')
			FROM pg_default_acl d JOIN pg_namespace n ON n.oid = d.defaclnamespace
			CROSS JOIN LATERAL aclexplode(d.defaclacl) a
			WHERE d.defaclrole = (SELECT oid FROM pg_roles WHERE rolname = $1) AND n.nspname = $2
			AND d.defaclobjtype = $3::"char" AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = $4)`,
			r.o.Owner.Name, r.o.Schema, g.defaclObj, g.role).Scan(&have)
		if err != nil {
			return fmt.Errorf("read default privileges for %q: %w", g.role, err)
		}
		m := missing(have, g.privs)
		if len(m) == 0 {
			continue
		}
		list := strings.Join(m, ", ")
		if err := r.exec(ctx, fmt.Sprintf("set default privileges %s on %s for %q", list, strings.ToLower(g.kind), g.role),
			"ALTER DEFAULT PRIVILEGES FOR ROLE "+r.ident(r.o.Owner.Name)+" IN SCHEMA "+r.ident(r.o.Schema)+
				" GRANT "+list+" ON "+g.kind+" TO "+r.ident(g.role)); err != nil {
			return err
		}
		r.changed("default privileges: %s on new %s in schema %s to %s", list, strings.ToLower(g.kind), r.o.Schema, g.role)
	}
	return nil
}

// publicSchema keeps the public schema closed: no CREATE for PUBLIC (PostgreSQL 15's default,
// not older servers'), and nothing granted to the application roles.
func (r *run) publicSchema(ctx context.Context) error {
	acl, exists, err := r.schemaACL(ctx, "public")
	if err != nil || !exists {
		return err
	}
	if slices.Contains(acl[""], "CREATE") {
		if err := r.exec(ctx, "revoke CREATE on schema public from PUBLIC", "REVOKE CREATE ON SCHEMA public FROM PUBLIC"); err != nil {
			return err
		}
		r.changed("revoke CREATE on schema public from PUBLIC")
	}
	for _, role := range r.o.roles() {
		if len(acl[role.Name]) > 0 {
			if err := r.exec(ctx, fmt.Sprintf("revoke all on schema public from %q", role.Name),
				"REVOKE ALL ON SCHEMA public FROM "+r.ident(role.Name)); err != nil {
				return err
			}
			r.changed("revoke %s on schema public from %s", strings.Join(acl[role.Name], ", "), role.Name)
		}
	}
	return nil
}

// databasePrivileges grants CONNECT to the three roles explicitly, so they keep access if an
// administrator revokes PUBLIC's default CONNECT. PUBLIC's own database privileges are left
// alone: revoking them would lock out every other user of an existing database.
func (r *run) databasePrivileges(ctx context.Context) error {
	var db string
	if err := r.tx.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		return err
	}
	for _, role := range r.o.roles() {
		var has bool
		err := r.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database d
			CROSS JOIN LATERAL aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
			WHERE d.datname = current_database() AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = $1)
			AND a.privilege_type = 'CONNECT')`, role.Name).Scan(&has)
		if err != nil {
			return fmt.Errorf("read database privileges of %q: %w", role.Name, err)
		}
		if has {
			continue
		}
		if err := r.exec(ctx, fmt.Sprintf("grant CONNECT on database %q to %q", db, role.Name),
			"GRANT CONNECT ON DATABASE "+r.ident(db)+" TO "+r.ident(role.Name)); err != nil {
			return err
		}
		r.changed("grant CONNECT on database %s to %s", db, role.Name)
	}
	return nil
}

// quoteLiteral quotes a string constant. Only verifiers built here pass through it (base64,
// digits, '$', ':'), but it is safe for any text without NUL under standard_conforming_strings,
// and with a backslash it uses the E-prefixed form with doubled backslashes, so that setting does
// not matter.
func quoteLiteral(s string) string {
	q := strings.ReplaceAll(s, `'`, `''`)
	if strings.Contains(q, `\`) {
		return `E'` + strings.ReplaceAll(q, `\`, `\\`) + `'`
	}
	return `'` + q + `'`
}
