package twin

import (
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/internal/atomicfile"
	"github.com/apgstack/apgstack/internal/bootstrap"
	"github.com/apgstack/apgstack/internal/twin/secretstore"
	"github.com/apgstack/apgstack/internal/twin/statedir"
)

// PSQL is how to run psql against an endpoint without the password on the command line: the
// connection in PG* variables, the password in a 0600 password file that Cleanup removes.
type PSQL struct {
	Env     []string // PGHOST, PGPORT, PGDATABASE, PGUSER, PGSSLMODE, PGSSLROOTCERT, PGPASSFILE
	Cleanup func()
}

// PSQLEnv prepares psql's environment for the writer endpoint, or the reader endpoint, as the
// master user; its password file is removed by Cleanup.
func PSQLEnv(cfg apgstack.Config, stateDir string, reader bool) (PSQL, error) {
	env, pass, err := connEnv(cfg, stateDir, reader, "", "")
	if err != nil {
		return PSQL{}, err
	}
	return PSQL{Env: append(env, "PGAPPNAME=apgstack-psql"), Cleanup: func() { os.Remove(pass) }}, nil
}

// Env is the libpq environment (PGHOST, PGPORT, PGDATABASE, PGUSER, PGSSLMODE=verify-full,
// PGSSLROOTCERT, PGPASSFILE) of the writer or reader endpoint for a role: "" or master, or one of
// the application roles (owner, rw, ro). The password file stays, 0600, in the state directory's
// run folder, rewritten at every call so that it holds the current password.
func Env(cfg apgstack.Config, stateDir string, reader bool, role string) ([]string, error) {
	endpoint := "writer"
	if reader {
		endpoint = "reader"
	}
	name := "pgpass-" + cmp.Or(role, bestpractice.RoleMaster) + "-" + endpoint
	env, _, err := connEnv(cfg, stateDir, reader, role, filepath.Join(statedir.Layout{Root: stateDir}.RunDir(), name))
	return env, err
}

// connEnv reads the role's current secret and writes its password file: at passPath, or a new
// temporary file when passPath is empty. It returns the environment and the file's path.
func connEnv(cfg apgstack.Config, stateDir string, reader bool, role, passPath string) ([]string, string, error) {
	l := statedir.Layout{Root: stateDir}
	store, err := secretstore.Open(l.SecretsDir())
	if err != nil {
		return nil, "", err
	}
	name := bestpractice.SecretName(cfg.Environment.Stage, cfg.Database.StackName)
	owner, rw, ro := bootstrap.RoleNames(cfg.Database.SchemaName())
	switch role {
	case "", bestpractice.RoleMaster:
	case bestpractice.RoleOwner:
		name += "/" + owner
	case bestpractice.RoleReadWrite:
		name += "/" + rw
	case bestpractice.RoleReadOnly:
		name += "/" + ro
	default:
		return nil, "", fmt.Errorf("role %q: allowed are %s", role, strings.Join(bestpractice.RotationRoles, ", "))
	}
	sec, err := store.GetDatabase(name, secretstore.Current)
	if err != nil {
		return nil, "", fmt.Errorf("secret %s: %w (is the twin up? apgstack up)", name, err)
	}
	port := cfg.Database.Port
	if reader {
		port = cfg.ReaderPort()
	}
	if err := os.MkdirAll(l.RunDir(), 0o700); err != nil {
		return nil, "", err
	}
	if passPath == "" {
		f, err := os.CreateTemp(l.RunDir(), "pgpass-*")
		if err != nil {
			return nil, "", fmt.Errorf("password file: %w", err)
		}
		f.Close()
		passPath = f.Name()
	}
	// The password file format escapes ':' and '\'.
	esc := strings.NewReplacer(`\`, `\\`, `:`, `\:`)
	line := fmt.Sprintf("localhost:%d:%s:%s:%s\n", port, esc.Replace(sec.DBName), esc.Replace(sec.Username), esc.Replace(sec.Password))
	if err := atomicfile.Write(passPath, []byte(line), atomicfile.Mode(0o600)); err != nil {
		os.Remove(passPath)
		return nil, "", fmt.Errorf("password file: %w", err)
	}
	env := []string{
		"PGHOST=localhost",
		"PGPORT=" + strconv.Itoa(port),
		"PGDATABASE=" + sec.DBName,
		"PGUSER=" + sec.Username,
		"PGSSLMODE=verify-full",
		"PGSSLROOTCERT=" + l.CABundle(),
		"PGPASSFILE=" + passPath,
	}
	return env, passPath, nil
}

// PSQLBinary finds psql: on PATH, else beside the server binaries.
func PSQLBinary() (string, error) {
	if p, err := execLookPath("psql"); err == nil {
		return p, nil
	}
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/psql"); len(m) > 0 {
		return m[len(m)-1], nil
	}
	return "", fmt.Errorf("psql not found: install it with `apt-get install postgresql-client`")
}

var execLookPath = exec.LookPath
