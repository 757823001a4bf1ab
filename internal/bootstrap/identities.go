package bootstrap

import (
	"context"
	"errors"
	"fmt"

	"github.com/apgstack/apgstack/internal/scram"
	"github.com/jackc/pgx/v5"
)

// Rotation identities. AWS's multi-user rotation function (SecretsManagerRDSPostgreSQLRotation-
// MultiUser, set_secret) alternates a secret between <role> and <role>_clone: when the clone does
// not exist it runs CREATE ROLE <role>_clone WITH LOGIN PASSWORD ...; GRANT <role> TO
// <role>_clone, and when it exists only ALTER USER ... WITH PASSWORD. From then on the
// application logs in as the clone, and what the clone creates would belong to the clone: the
// owner's default privileges would not apply and the read-write and read-only roles would get
// nothing on new tables.
//
// So the bootstrap creates each clone before the first rotation (Options.Clones), in the shape
// the rotation leaves alone: LOGIN without a password until the rotation sets one, a member of
// its role (inheriting its privileges), and — for the owner — with the session setting
// role=<owner>, so whatever the owner's clone creates belongs to the owner. A clone that exists
// (made by a rotation before this bootstrap knew of clones) is converged the same way, and what it
// owns in the database is handed to its role.

// CloneSuffix is what AWS's multi-user rotation appends to a role's name for its alternate
// identity.
const CloneSuffix = "_clone"

// CloneName is the rotation's alternate identity of a role.
func CloneName(role string) string { return role + CloneSuffix }

// roles creates the three roles (LOGIN, nothing elevated) and sets the password of each role whose
// secret names the role itself.
func (r *run) roles(ctx context.Context) error {
	if err := r.tx.QueryRow(ctx, `SELECT has_table_privilege('pg_catalog.pg_authid', 'SELECT'),
		(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)`).Scan(&r.canReadAuthid, &r.super); err != nil {
		return fmt.Errorf("check own privileges: %w", err)
	}
	for _, role := range r.o.roles() {
		pw := ""
		if role.login() == role.Name {
			pw = role.Password
		}
		if err := r.loginRole(ctx, role.Name, pw); err != nil {
			return err
		}
	}
	// A non-superuser (Aurora's master user) must be a member of the owner role to create the
	// schema for it and to set the owner's default privileges.
	return r.memberOf(ctx, r.o.Owner.Name)
}

// memberOf makes the current user a member of role unless it is a superuser.
func (r *run) memberOf(ctx context.Context, role string) error {
	if r.super {
		return nil
	}
	var member bool
	if err := r.tx.QueryRow(ctx, "SELECT pg_has_role(current_user, $1, 'MEMBER')", role).Scan(&member); err != nil {
		return fmt.Errorf("check membership in %q: %w", role, err)
	}
	if member {
		return nil
	}
	if err := r.exec(ctx, fmt.Sprintf("grant role %q to the current user", role), "GRANT "+r.ident(role)+" TO CURRENT_USER"); err != nil {
		return err
	}
	r.changed("grant role %s to current user", role)
	return nil
}

// loginRole makes name a login role with no elevated attribute and, when password is set, that
// password.
func (r *run) loginRole(ctx context.Context, name, password string) error {
	var exists, login, elevated bool
	err := r.tx.QueryRow(ctx, `SELECT true, rolcanlogin, rolsuper OR rolcreatedb OR rolcreaterole OR rolreplication OR rolbypassrls
		FROM pg_roles WHERE rolname = $1`, name).Scan(&exists, &login, &elevated)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("look up role %q: %w", name, err)
	}
	id := r.ident(name)
	if !exists {
		stmt := "CREATE ROLE " + id + " LOGIN"
		if password != "" {
			v, err := scram.Verifier(password)
			if err != nil {
				return err
			}
			stmt += " PASSWORD " + quoteLiteral(v)
		}
		if err := r.execPassword(ctx, fmt.Sprintf("create role %q", name), stmt); err != nil {
			return err
		}
		r.created("role %s", name)
		return nil
	}
	if !login {
		if err := r.exec(ctx, fmt.Sprintf("allow role %q to log in", name), "ALTER ROLE "+id+" LOGIN"); err != nil {
			return err
		}
		r.changed("role %s: LOGIN", name)
	}
	if elevated {
		if err := r.exec(ctx, fmt.Sprintf("remove elevated attributes of role %q", name),
			"ALTER ROLE "+id+" NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"); err != nil {
			return err
		}
		r.changed("role %s: NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS", name)
	}
	if password == "" {
		return nil
	}
	counted := false
	if r.canReadAuthid {
		var stored *string
		if err := r.tx.QueryRow(ctx, "SELECT rolpassword FROM pg_catalog.pg_authid WHERE rolname = $1", name).Scan(&stored); err != nil {
			return fmt.Errorf("read password verifier of role %q: %w", name, err)
		}
		if stored != nil && scram.Matches(*stored, password) {
			return nil
		}
		counted = true
	}
	v, err := scram.Verifier(password)
	if err != nil {
		return err
	}
	if err := r.execPassword(ctx, fmt.Sprintf("set password of role %q", name), "ALTER ROLE "+id+" PASSWORD "+quoteLiteral(v)); err != nil {
		return err
	}
	if counted {
		r.changed("role %s: password", name)
	}
	return nil
}

// identities prepares or converges each role's rotation identity.
func (r *run) identities(ctx context.Context) error {
	for _, role := range r.o.roles() {
		clone := CloneName(role.Name)
		var exists bool
		if err := r.tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", clone).Scan(&exists); err != nil {
			return fmt.Errorf("look up role %q: %w", clone, err)
		}
		named := role.login() == clone
		if !exists && !named && !r.o.Clones {
			continue
		}
		pw := ""
		if named {
			pw = role.Password
		}
		if err := r.loginRole(ctx, clone, pw); err != nil {
			return err
		}
		if err := r.cloneOf(ctx, clone, role.Name); err != nil {
			return err
		}
	}
	return nil
}

// cloneOf makes clone act with role's privileges: a member of role inheriting them, the owner's
// clone with role as its session role, and nothing owned by the clone itself.
func (r *run) cloneOf(ctx context.Context, clone, role string) error {
	var inherits bool
	if err := r.tx.QueryRow(ctx, "SELECT pg_has_role($1, $2, 'USAGE')", clone, role).Scan(&inherits); err != nil {
		return fmt.Errorf("check membership of %q in %q: %w", clone, role, err)
	}
	if !inherits {
		if err := r.exec(ctx, fmt.Sprintf("grant role %q to %q", role, clone), "GRANT "+r.ident(role)+" TO "+r.ident(clone)); err != nil {
			return err
		}
		r.changed("grant role %s to %s", role, clone)
	}
	if role == r.o.Owner.Name {
		// Objects belong to the role that creates them: the owner's clone creates as the owner,
		// so the owner's default privileges reach the read-write and read-only roles.
		setting := "role=" + role
		var set bool
		if err := r.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_db_role_setting
			WHERE setrole = (SELECT oid FROM pg_roles WHERE rolname = $1) AND setdatabase = 0 AND $2 = ANY (setconfig))`,
			clone, setting).Scan(&set); err != nil {
			return fmt.Errorf("read settings of role %q: %w", clone, err)
		}
		if !set {
			if err := r.exec(ctx, fmt.Sprintf("make %q act as %q", clone, role),
				"ALTER ROLE "+r.ident(clone)+" SET role = "+quoteLiteral(role)); err != nil {
				return err
			}
			r.changed("role %s: acts as %s (SET role)", clone, role)
		}
	}
	var owns bool
	if err := r.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_shdepend
		WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND refclassid = 'pg_authid'::regclass AND refobjid = (SELECT oid FROM pg_roles WHERE rolname = $1) AND deptype = 'o')`,
		clone).Scan(&owns); err != nil {
		return fmt.Errorf("look up objects owned by %q: %w", clone, err)
	}
	if !owns {
		return nil
	}
	// REASSIGN OWNED needs the privileges of both roles.
	if err := r.memberOf(ctx, clone); err != nil {
		return err
	}
	if err := r.memberOf(ctx, role); err != nil {
		return err
	}
	if err := r.exec(ctx, fmt.Sprintf("give the objects of %q to %q", clone, role),
		"REASSIGN OWNED BY "+r.ident(clone)+" TO "+r.ident(role)); err != nil {
		return err
	}
	r.changed("objects owned by %s: owner %s", clone, role)
	return nil
}
