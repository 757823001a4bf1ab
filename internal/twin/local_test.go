package twin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/internal/testkit/pgtest"
	"github.com/apgstack/apgstack/internal/twin/api"
)

// TestBinaryEndToEnd drives the real apgstack binary as a user would: up in a working directory
// (default state directory .apgstack), status, psql on both endpoints, up again (already
// running), down, and checks that no process of the state directory is left.
func TestBinaryEndToEnd(t *testing.T) {
	tw := newBinTwin(t)
	work, port, stateDir := tw.work, tw.port, tw.stateDir
	// An error for a failed command, as the checks below read it.
	run := func(args ...string) (string, string, error) {
		t.Helper()
		out, errOut, code := tw.run(args...)
		if code != 0 {
			return out, errOut, fmt.Errorf("exit status %d", code)
		}
		return out, errOut, nil
	}

	out, errOut, err := run("up", "--output", "json")
	if err != nil {
		t.Fatalf("up: %v\n%s", err, errOut)
	}
	var outputs api.Outputs
	if err := json.Unmarshal([]byte(out), &outputs); err != nil {
		t.Fatalf("up --output json: %v\n%s", err, out)
	}
	wantCmd := `psql "host=localhost port=` + strconv.Itoa(port) + ` dbname=AuroraPostgresDB user=pgadmin sslmode=verify-full sslrootcert=` + filepath.Join(stateDir, "ca.pem") + `"`
	if outputs.ClusterEndpoint != "localhost" || outputs.Port != strconv.Itoa(port) || outputs.PSQLCommandLine != wantCmd {
		t.Errorf("outputs: %+v\nwant PSQLCommandLine %s", outputs, wantCmd)
	}
	if !strings.Contains(errOut, outputs.SecretFile) || !strings.Contains(errOut, "PostgreSQL 17") {
		t.Errorf("up does not say where the secret is or which version runs:\n%s", errOut)
	}
	password := secretPassword(t, outputs.SecretFile)
	if strings.Contains(out+errOut, password) {
		t.Fatal("up printed the master password")
	}

	out, _, err = run("status", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var st api.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	if st.Phase != api.PhaseReady || len(st.Instances) != 1 || st.Instances[0].WALPosition == "" || st.VersionWarning == "" {
		t.Errorf("status: %+v", st)
	}
	text, _, err := run("status")
	if err != nil || !strings.Contains(text, "instance1  writer  running") {
		t.Errorf("status text: %v\n%s", err, text)
	}

	out, errOut, err = run("psql", "--", "-Atc", "SELECT current_user || ' ' || ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
	if err != nil || strings.TrimSpace(out) != "pgadmin true" {
		t.Errorf("psql: %q %v\n%s", out, err, errOut)
	}
	out, _, err = run("psql", "--reader", "--", "-Atc", "SELECT 1")
	if err != nil || strings.TrimSpace(out) != "1" {
		t.Errorf("psql --reader: %q %v", out, err)
	}
	if left, _ := filepath.Glob(filepath.Join(stateDir, "run", "pgpass-*")); len(left) > 0 {
		t.Errorf("password files left behind: %v", left)
	}

	// No secret in any file of the state directory outside the secret store: supervisor log,
	// events, state, server logs (log_statement=ddl and pgaudit see CREATE ROLE).
	secrets := map[string]string{"master": password}
	roleFiles, _ := filepath.Glob(filepath.Join(filepath.Dir(outputs.SecretFile), "apgstack-database", "*.json"))
	for _, f := range roleFiles {
		secrets[filepath.Base(f)] = secretPassword(t, f)
	}
	if len(roleFiles) != 3 {
		t.Errorf("application role secrets: %v, want 3", roleFiles)
	}
	_ = filepath.WalkDir(stateDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(path, filepath.Join(stateDir, "secrets")) {
			return nil
		}
		data, _ := os.ReadFile(path)
		for name, pw := range secrets {
			if bytes.Contains(data, []byte(pw)) {
				t.Errorf("the %s password is in %s", name, path)
			}
		}
		return nil
	})

	if _, errOut, err = run("up"); err != nil || !strings.Contains(errOut, "already running") {
		t.Errorf("second up: %v\n%s", err, errOut)
	}
	if _, errOut, err = run("down"); err != nil {
		t.Fatalf("down: %v\n%s", err, errOut)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if data, err := os.ReadFile(p); err == nil && bytes.Contains(data, []byte(work)) {
			t.Errorf("process left after down: %s", bytes.ReplaceAll(data, []byte{0}, []byte{' '}))
		}
	}
	if _, _, err := run("down", "--delete", "--yes"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stateDir); !os.IsNotExist(err) {
		t.Errorf("state directory still there after down --delete: %v", err)
	}
}

func secretPassword(t *testing.T, file string) string {
	t.Helper()
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode %v", fi.Mode().Perm())
	}
	var sec struct {
		Versions []struct {
			VersionStages []string
			SecretString  string
		}
	}
	data, _ := os.ReadFile(file)
	if err := json.Unmarshal(data, &sec); err != nil || len(sec.Versions) == 0 {
		t.Fatalf("secret file: %v", err)
	}
	var d struct{ Password string }
	_ = json.Unmarshal([]byte(sec.Versions[0].SecretString), &d)
	if d.Password == "" {
		t.Fatal("no password in the secret")
	}
	return d.Password
}

func TestCheckUnreachableStateDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root switches to the postgres account")
	}
	parent := t.TempDir() // under a 0700 folder of root: postgres cannot pass
	cfg := apgstack.Default()
	_, err := Check(context.Background(), cfg, filepath.Join(parent, "work", ".apgstack"), false)
	if err == nil || !strings.Contains(err.Error(), "--state-dir") || !strings.Contains(err.Error(), "chmod o+x ") {
		t.Fatalf("Check: %v", err)
	}
	if _, err := os.Stat(filepath.Join(parent, "work")); !os.IsNotExist(err) {
		t.Error("Check created something")
	}
}

func TestStateDir(t *testing.T) {
	cfg := apgstack.Default()
	wd, _ := os.Getwd()
	for _, tt := range []struct{ cfgDir, flag, want string }{
		{".apgstack", "", filepath.Join(wd, ".apgstack")},
		{".apgstack", "/srv/x", "/srv/x"},
		{"/var/lib/a", "", "/var/lib/a"},
	} {
		cfg.Target.Local.StateDir = tt.cfgDir
		if got, _ := StateDir(cfg, tt.flag); got != tt.want {
			t.Errorf("StateDir(%q, %q) = %q, want %q", tt.cfgDir, tt.flag, got, tt.want)
		}
	}
}

// The default state directory in a working directory the server account cannot reach (a clone
// under /root) is placed under FallbackRoot and linked; an explicit one is refused instead.
func TestPlaceStateDirFallback(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root switches to the postgres account")
	}
	root := pgtest.ReachableDir(t, "fallback")
	old := FallbackRoot
	FallbackRoot = root
	t.Cleanup(func() { FallbackRoot = old })
	work := t.TempDir() // under a 0700 folder of root
	t.Chdir(work)

	cfg := apgstack.Default()
	explicit := cfg
	explicit.Target.Local.StateDir = filepath.Join(work, "state")
	if dir, note, err := PlaceStateDir(explicit, ""); err != nil || note != "" || dir != explicit.Target.Local.StateDir {
		t.Fatalf("explicit: %q %q %v", dir, note, err)
	}
	if _, err := Check(context.Background(), explicit, explicit.Target.Local.StateDir, false); err == nil {
		t.Fatal("explicit unreachable state directory accepted")
	}

	dir, note, err := PlaceStateDir(cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(dir, root+"/") || !strings.Contains(note, "linked from "+filepath.Join(work, ".apgstack")) {
		t.Fatalf("placed at %q, note %q", dir, note)
	}
	if _, err := Check(context.Background(), cfg, dir, false); err != nil {
		t.Fatalf("placed state directory not reachable: %v", err)
	}
	// Every command finds it through the link; up again does not move it.
	if got, _ := StateDir(cfg, ""); got != dir {
		t.Errorf("StateDir = %q, want %q", got, dir)
	}
	if again, note2, _ := PlaceStateDir(cfg, ""); again != dir || note2 != "" {
		t.Errorf("second placement: %q %q", again, note2)
	}
	if err := RemoveStateDir(cfg, "", dir); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, filepath.Join(work, ".apgstack")} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s left after RemoveStateDir", p)
		}
	}
}
