// First creation: the master secret and the application roles' secrets, the master user and the
// database, and the bootstrap, each done once.

package supervisor

import (
	"context"
	"fmt"
	"slices"

	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/internal/bootstrap"
	"github.com/apgstack/apgstack/internal/scram"
	"github.com/apgstack/apgstack/internal/twin/instance"
	"github.com/apgstack/apgstack/internal/twin/postgres"
	"github.com/apgstack/apgstack/internal/twin/secretstore"
	"github.com/jackc/pgx/v5"
)

// masterSecret returns the master secret, generating it on first creation.
func (s *Supervisor) masterSecret() (secretstore.DatabaseSecret, error) {
	name := s.SecretName()
	if !s.store.Exists(name) {
		pw, err := secretstore.GeneratePassword()
		if err != nil {
			return secretstore.DatabaseSecret{}, err
		}
		d := secretstore.DatabaseSecret{Engine: "postgres", Host: "localhost", Port: s.cfg().Database.Port,
			Username: s.cfg().Database.Username, Password: pw, DBName: s.cfg().Database.Name}
		if err := s.store.CreateDatabase(name, d); err != nil {
			return secretstore.DatabaseSecret{}, err
		}
		s.progress("master secret %s created in %s", name, s.store.Path(name))
	}
	return s.store.GetDatabase(name, secretstore.Current)
}

// SecretName is the master secret's name.
func (s *Supervisor) SecretName() string {
	return bestpractice.SecretName(s.cfg().Environment.Stage, s.cfg().Database.StackName)
}

// roleSecret returns the password of an application role, kept as its own secret beside the
// master's, generating it on first use.
func (s *Supervisor) roleSecret(role string) (string, error) {
	name := s.SecretName() + "/" + role
	if !s.store.Exists(name) {
		pw, err := secretstore.GeneratePassword()
		if err != nil {
			return "", err
		}
		d := secretstore.DatabaseSecret{Engine: "postgres", Host: "localhost", Port: s.cfg().Database.Port,
			Username: role, Password: pw, DBName: s.cfg().Database.Name}
		if err := s.store.CreateDatabase(name, d); err != nil {
			return "", err
		}
	}
	d, err := s.store.GetDatabase(name, secretstore.Current)
	return d.Password, err
}

// firstCreation creates the master user and the database, then runs the bootstrap, once.
func (s *Supervisor) firstCreation(ctx context.Context, w *instance.Instance, master secretstore.DatabaseSecret) error {
	if !s.topo.now().state.MasterCreated {
		s.progress("creating the master user %s and the database %s", master.Username, master.DBName)
		if err := createMaster(ctx, w, master); err != nil {
			return err
		}
		if err := s.markMasterCreated(); err != nil {
			return err
		}
	}
	if s.topo.now().state.Bootstrapped {
		return nil
	}
	s.progress("bootstrap: extensions, schema %s and its roles", s.cfg().Database.SchemaName())
	conn, err := w.Connect(ctx, master.DBName)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	opts := bootstrap.DefaultOptions(s.cfg().Database)
	for _, r := range []*bootstrap.Role{&opts.Owner, &opts.ReadWrite, &opts.ReadOnly} {
		if r.Password, err = s.roleSecret(r.Name); err != nil {
			return err
		}
	}
	// Only what is not installed here may be missing; everything else must be created.
	var available []string
	rows, err := conn.Query(ctx, "SELECT name FROM pg_available_extensions")
	if err != nil {
		return fmt.Errorf("bootstrap: available extensions: %w", err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return err
		}
		available = append(available, n)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, e := range opts.Extensions {
		if !slices.Contains(available, e) {
			opts.Optional = append(opts.Optional, e)
		}
	}
	rep, err := bootstrap.Run(ctx, conn, opts)
	if err != nil {
		return err
	}
	for _, m := range rep.MissingOptional {
		s.progress("warning: extension %s is not installed on this machine; the bootstrap left it out", m)
	}
	s.log.Info("bootstrap done", "created", rep.Created, "changed", rep.Changed)
	return s.markBootstrapped()
}

// rdsSuperuser is the local stand-in for Aurora's rds_superuser: the master user is a member,
// as on Aurora, and is not a superuser. What works for it on the twin then works on Aurora, and
// the servers' superuser-reserved connections stay free for the supervisor's health checks, so
// that a flood of the master's connections is never taken for a dead writer.
const rdsSuperuser = "rds_superuser"

// rdsSuperuserRoles are the predefined roles rds_superuser holds on Aurora PostgreSQL (monitoring,
// signalling other sessions), granted with the admin option so the master can pass them on.
var rdsSuperuserRoles = []string{"pg_monitor", "pg_signal_backend", "pg_read_all_settings", "pg_read_all_stats", "pg_stat_scan_tables", "pg_checkpoint"}

// createMaster creates the master user and the database. The master user has what Aurora's has:
// LOGIN, CREATEROLE, CREATEDB and membership in rds_superuser, not SUPERUSER (an existing one is
// demoted). The password goes over the wire only as a SCRAM verifier, so the statement logs
// (log_statement=ddl, pgaudit) never see it.
func createMaster(ctx context.Context, w *instance.Instance, m secretstore.DatabaseSecret) error {
	conn, err := w.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	verifier, err := scram.Verifier(m.Password)
	if err != nil {
		return err
	}
	user := pgx.Identifier{m.Username}.Sanitize()
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", m.Username).Scan(&exists); err != nil {
		return fmt.Errorf("master user: %w", err)
	}
	if err := ensureRDSSuperuser(ctx, conn); err != nil {
		return err
	}
	const attrs = " LOGIN NOSUPERUSER CREATEROLE CREATEDB PASSWORD "
	stmt := "CREATE ROLE " + user + attrs + postgres.Quote(verifier)
	if exists {
		stmt = "ALTER ROLE " + user + attrs + postgres.Quote(verifier)
	}
	// The statement carries the verifier: it runs with statement logging off (scram.ExecUnlogged).
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("create master user %s: %w", m.Username, err)
	}
	if err := scram.ExecUnlogged(ctx, tx, stmt); err != nil {
		_ = tx.Rollback(ctx)
		return fmt.Errorf("create master user %s: %w", m.Username, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("create master user %s: %w", m.Username, err)
	}
	if _, err := conn.Exec(ctx, "GRANT "+rdsSuperuser+" TO "+user+" WITH ADMIN OPTION"); err != nil {
		return fmt.Errorf("master user %s: %w", m.Username, err)
	}
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", m.DBName).Scan(&exists); err != nil {
		return fmt.Errorf("database %s: %w", m.DBName, err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{m.DBName}.Sanitize()+" OWNER "+user); err != nil {
			return fmt.Errorf("create database %s: %w", m.DBName, err)
		}
	}
	return nil
}

// ensureRDSSuperuser creates the rds_superuser role with the predefined roles this server has.
func ensureRDSSuperuser(ctx context.Context, conn *pgx.Conn) error {
	if _, err := conn.Exec(ctx, `DO $$ BEGIN
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '`+rdsSuperuser+`') THEN
			CREATE ROLE `+rdsSuperuser+` NOLOGIN CREATEROLE CREATEDB;
		END IF;
	END $$`); err != nil {
		return fmt.Errorf("create role %s: %w", rdsSuperuser, err)
	}
	for _, r := range rdsSuperuserRoles {
		var present bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", r).Scan(&present); err != nil {
			return err
		}
		if !present {
			continue // pg_checkpoint is PostgreSQL 15's
		}
		if _, err := conn.Exec(ctx, "GRANT "+r+" TO "+rdsSuperuser+" WITH ADMIN OPTION"); err != nil {
			return fmt.Errorf("grant %s to %s: %w", r, rdsSuperuser, err)
		}
	}
	return nil
}
