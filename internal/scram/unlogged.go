package scram

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// quietSettings returns the server settings that would write a statement's text, and so a password
// verifier, to the server log or keep it in a view, with the values that stop them: the statement
// log (log_statement=ddl logs every CREATE/ALTER ROLE), the slow-statement log, the statement
// that failed (log_min_error_statement), and pg_stat_statements' record of utility statements.
func quietSettings() []struct{ name, value string } {
	return []struct{ name, value string }{
		{"log_statement", "none"},
		{"log_min_duration_statement", "-1"},
		{"log_min_error_statement", "panic"},
		{"pg_stat_statements.track_utility", "off"},
	}
}

// ExecUnlogged runs stmt, a statement that carries a password verifier (CREATE/ALTER ROLE ...
// PASSWORD), in tx with the server's statement logging off for that statement alone: the
// settings are changed for the transaction only (set_config is_local) and put back right after,
// so the rest of the transaction is logged as configured. pgaudit's record stays; it redacts the
// password itself.
//
// Only a superuser may change these settings. For other roles (Aurora's master user is an
// rds_superuser, not a superuser) the statement runs as it is: the verifier, never the password,
// may then reach the log. Errors never quote stmt.
func ExecUnlogged(ctx context.Context, tx pgx.Tx, stmt string) error {
	settings := quietSettings()
	names := make([]string, len(settings))
	for i, s := range settings {
		names[i] = s.name
	}
	// Settings a server does not know (pg_stat_statements not loaded) read as NULL and are left
	// alone.
	var super bool
	var prev []*string
	err := tx.QueryRow(ctx, `SELECT rolsuper, ARRAY(SELECT current_setting(n, true) FROM unnest($1::text[]) WITH ORDINALITY AS s(n, i) ORDER BY i)
		FROM pg_roles WHERE rolname = current_user`, names).Scan(&super, &prev)
	if err != nil {
		return fmt.Errorf("read logging settings: %w", err)
	}
	var setNames, quiet, restore []string
	for i, s := range settings {
		if prev[i] != nil {
			setNames = append(setNames, s.name)
			quiet = append(quiet, s.value)
			restore = append(restore, *prev[i])
		}
	}
	const set = "SELECT count(set_config(n, v, true)) FROM unnest($1::text[], $2::text[]) AS s(n, v)"
	if super {
		if _, err := tx.Exec(ctx, set, setNames, quiet); err != nil {
			return fmt.Errorf("turn statement logging off: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, stmt); err != nil {
		return err
	}
	if super {
		if _, err := tx.Exec(ctx, set, setNames, restore); err != nil {
			return fmt.Errorf("turn statement logging back on: %w", err)
		}
	}
	return nil
}
