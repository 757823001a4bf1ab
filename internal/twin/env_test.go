package twin

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apgstack/apgstack/internal/twin/api"
)

// TestEnvAndURLConnectApplications: `eval "$(apgstack env ...)"` gives any libpq program a
// verify-full connection as the master or an application role, and the outputs' URL (with the
// password file) connects too; no password is printed.
func TestEnvAndURLConnectApplications(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs PostgreSQL")
	}
	work, bin := buildBinary(t)
	port, readerPort := freePort(t), freePort(t)
	base := []string{"--set", "database.port=" + strconv.Itoa(port), "--set", "target.local.readerPort=" + strconv.Itoa(readerPort)}
	stateDir := filepath.Join(work, ".apgstack")
	t.Cleanup(func() { cli(t, work, bin, "down", "--skip-final-snapshot", "--state-dir", stateDir) })
	mustCLI(t, work, bin, append(base, "up")...)
	psqlBin, err := PSQLBinary()
	if err != nil {
		t.Fatal(err)
	}
	password := func(file string) string { return secretPassword(t, file) }
	var outputs api.Outputs
	out, _ := mustCLI(t, work, bin, append(base, "outputs", "-o", "json")...)
	if err := json.Unmarshal([]byte(out), &outputs); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(outputs.URL, "postgres://pgadmin@localhost:"+strconv.Itoa(port)+"/AuroraPostgresDB?") || !strings.Contains(outputs.URL, "sslmode=verify-full") {
		t.Errorf("URL output %q", outputs.URL)
	}
	if pw := password(outputs.SecretFile); strings.Contains(out, pw) {
		t.Fatal("outputs printed the master password")
	}

	for _, tc := range []struct{ role, want string }{{"master", "pgadmin"}, {"rw", "aurorapostgresdb_rw"}, {"ro", "aurorapostgresdb_ro"}} {
		out, errOut := mustCLI(t, work, bin, append(base, "env", "--role", tc.role)...)
		env := []string{"PATH=/usr/bin:/bin"}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			kv, ok := strings.CutPrefix(line, "export ")
			if !ok {
				t.Fatalf("env printed %q", line)
			}
			k, v, _ := strings.Cut(kv, "=")
			env = append(env, k+"="+strings.Trim(v, "'"))
			if k == "PGPASSFILE" {
				if fi, err := os.Stat(strings.Trim(v, "'")); err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("password file %s: %v", v, err)
				}
			}
		}
		c := exec.Command(psqlBin, "-Atc", "SELECT current_user || ' ' || ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
		c.Env = env
		got, err := c.CombinedOutput()
		if err != nil || strings.TrimSpace(string(got)) != tc.want+" true" {
			t.Errorf("psql with env --role %s: %q %v\n%s", tc.role, got, err, errOut)
		}
		if tc.role == "master" {
			c = exec.Command(psqlBin, outputs.URL, "-Atc", "SELECT 1")
			c.Env = env // the password file; the URL names everything else
			if got, err := c.CombinedOutput(); err != nil || strings.TrimSpace(string(got)) != "1" {
				t.Errorf("psql with the URL: %q %v", got, err)
			}
		}
	}
}
