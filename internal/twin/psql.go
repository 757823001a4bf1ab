package twin

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/internal/twin/secretstore"
	"github.com/apgstack/apgstack/internal/twin/statedir"
)

// PSQL is how to run psql against an endpoint without the password on the command line: the
// connection in PG* variables, the password in a 0600 password file that Cleanup removes.
type PSQL struct {
	Env     []string // PGHOST, PGPORT, PGDATABASE, PGUSER, PGSSLMODE, PGSSLROOTCERT, PGPASSFILE
	Cleanup func()
}

// PSQLEnv prepares psql's environment for the writer endpoint, or the reader endpoint.
func PSQLEnv(cfg apgstack.Config, stateDir string, reader bool) (PSQL, error) {
	l := statedir.Layout{Root: stateDir}
	store, err := secretstore.Open(l.SecretsDir())
	if err != nil {
		return PSQL{}, err
	}
	name := bestpractice.SecretName(cfg.Environment.Stage, cfg.Database.StackName)
	sec, err := store.GetDatabase(name, secretstore.Current)
	if err != nil {
		return PSQL{}, fmt.Errorf("master secret: %w (is the twin up? apgstack up)", err)
	}
	port := cfg.Database.Port
	if reader {
		port = cfg.ReaderPort()
	}
	if err := os.MkdirAll(l.RunDir(), 0o700); err != nil {
		return PSQL{}, err
	}
	f, err := os.CreateTemp(l.RunDir(), "pgpass-*")
	if err != nil {
		return PSQL{}, fmt.Errorf("password file: %w", err)
	}
	cleanup := func() { os.Remove(f.Name()) }
	// The password file format escapes ':' and '\'.
	esc := strings.NewReplacer(`\`, `\\`, `:`, `\:`)
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, "localhost:%d:%s:%s:%s\n", port, esc.Replace(sec.DBName), esc.Replace(sec.Username), esc.Replace(sec.Password))
	if err := w.Flush(); err != nil {
		f.Close()
		cleanup()
		return PSQL{}, fmt.Errorf("password file: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		cleanup()
		return PSQL{}, err
	}
	f.Close()
	env := []string{
		"PGHOST=localhost",
		"PGPORT=" + strconv.Itoa(port),
		"PGDATABASE=" + sec.DBName,
		"PGUSER=" + sec.Username,
		"PGSSLMODE=verify-full",
		"PGSSLROOTCERT=" + l.CABundle(),
		"PGPASSFILE=" + f.Name(),
		"PGAPPNAME=apgstack-psql",
	}
	return PSQL{Env: env, Cleanup: cleanup}, nil
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
