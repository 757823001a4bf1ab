package twin

import (
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/apgstack/apgstack/internal/twin/api"
)

// TestEnvAndURLConnectApplications: `eval "$(apgstack env ...)"` gives any libpq program a
// verify-full connection as the master or an application role, and the outputs' URL (with the
// password file) connects too; no password is printed.
func TestEnvAndURLConnectApplications(t *testing.T) {
	tw := newBinTwin(t)
	tw.mustRun("up")
	psqlBin, err := PSQLBinary()
	if err != nil {
		t.Fatal(err)
	}
	password := func(file string) string { return secretPassword(t, file) }
	var outputs api.Outputs
	out, _ := tw.mustRun("outputs", "-o", "json")
	if err := json.Unmarshal([]byte(out), &outputs); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(outputs.URL, "postgres://pgadmin@localhost:"+strconv.Itoa(tw.port)+"/AuroraPostgresDB?") || !strings.Contains(outputs.URL, "sslmode=verify-full") {
		t.Errorf("URL output %q", outputs.URL)
	}
	if pw := password(outputs.SecretFile); strings.Contains(out, pw) {
		t.Fatal("outputs printed the master password")
	}

	for _, tc := range []struct{ role, want string }{{"master", "pgadmin"}, {"rw", "aurorapostgresdb_rw"}, {"ro", "aurorapostgresdb_ro"}} {
		out, errOut := tw.mustRun("env", "--role", tc.role)
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
