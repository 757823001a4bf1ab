package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apgstack/apgstack/internal/testkit/pgtest"
)

// runBootstrapCLI drives the command line with its own environment and returns what it printed.
func runBootstrapCLI(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(""), &out, &errb, env)
	return code, out.String(), errb.String()
}

func TestBootstrapCommand(t *testing.T) {
	pg := pgtest.Start(t, pgtest.WithTLS())
	pg.CreateDatabase(t, "appdb")
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "apgstack.yaml")
	if err := os.WriteFile(cfgPath, []byte("database:\n  name: appdb\n  schema: shop\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	secrets := filepath.Join(dir, "roles.json")
	base := []string{"bootstrap", "--config", cfgPath, "--host", "127.0.0.1", "--port", strconv.Itoa(pg.Port),
		"--username", pg.Superuser, "--sslrootcert", pg.CAFile}
	env := []string{"PGPASSWORD=" + pg.Password}
	noLeak := func(t *testing.T, texts ...string) {
		t.Helper()
		data, _ := os.ReadFile(secrets)
		var s roleSecrets
		_ = json.Unmarshal(data, &s)
		for _, text := range texts {
			if strings.Contains(text, pg.Password) {
				t.Error("the administrator password was printed")
			}
			if s.Owner != nil && (strings.Contains(text, s.Owner.Password) || strings.Contains(text, s.ReadWrite.Password) || strings.Contains(text, s.ReadOnly.Password)) {
				t.Error("a generated role password was printed")
			}
		}
	}

	t.Run("new roles need --secrets-out", func(t *testing.T) {
		code, _, stderr := runBootstrapCLI(t, env, base...)
		if code != ExitUsage || !strings.Contains(stderr, "--secrets-out") || !strings.Contains(stderr, "shop_owner") {
			t.Errorf("exit %d: %s", code, stderr)
		}
	})

	t.Run("first run", func(t *testing.T) {
		code, stdout, stderr := runBootstrapCLI(t, env, append(base, "--secrets-out", secrets)...)
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if !strings.Contains(stdout, "created: schema shop") || !strings.Contains(stdout, "created: role shop_rw") {
			t.Errorf("stdout: %s", stdout)
		}
		fi, err := os.Stat(secrets)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("secrets file: %v %v", fi, err)
		}
		noLeak(t, stdout, stderr)
		var s roleSecrets
		data, _ := os.ReadFile(secrets)
		if err := json.Unmarshal(data, &s); err != nil || s.Owner == nil || s.ReadWrite == nil || s.ReadOnly == nil {
			t.Fatalf("secrets file content: %v", err)
		}
		// The generated passwords log in, over verify-full TLS.
		rw := pg.ConnAs(t, s.ReadWrite.Username, s.ReadWrite.Password, "appdb")
		owner := pg.ConnAs(t, s.Owner.Username, s.Owner.Password, "appdb")
		if _, err := owner.Exec(context.Background(), "CREATE TABLE shop.t (i int)"); err != nil {
			t.Fatal(err)
		}
		if _, err := rw.Exec(context.Background(), "INSERT INTO shop.t VALUES (1)"); err != nil {
			t.Error(err)
		}
	})

	t.Run("second run changes nothing", func(t *testing.T) {
		before, _ := os.ReadFile(secrets)
		code, stdout, stderr := runBootstrapCLI(t, env, append(base, "--secrets-out", secrets, "--output", "json")...)
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var got struct {
			Created, Changed []string
			Schema           string
		}
		if err := json.Unmarshal([]byte(stdout), &got); err != nil || len(got.Created)+len(got.Changed) != 0 || got.Schema != "shop" {
			t.Errorf("json %s: %v", stdout, err)
		}
		after, _ := os.ReadFile(secrets)
		if !bytes.Equal(before, after) {
			t.Error("the secrets file changed")
		}
		noLeak(t, stdout, stderr)
		// Existing roles need no file.
		if code, stdout, stderr := runBootstrapCLI(t, env, base...); code != ExitOK || !strings.Contains(stdout, "no changes") {
			t.Errorf("without --secrets-out: exit %d: %s %s", code, stdout, stderr)
		}
	})

	t.Run("password from a secret file", func(t *testing.T) {
		sec := filepath.Join(dir, "master.json")
		b, _ := json.Marshal(map[string]string{"username": pg.Superuser, "password": pg.Password})
		if err := os.WriteFile(sec, b, 0o600); err != nil {
			t.Fatal(err)
		}
		args := []string{"bootstrap", "--config", cfgPath, "--host", "127.0.0.1", "--port", strconv.Itoa(pg.Port),
			"--sslrootcert", pg.CAFile, "--password-secret", sec}
		if code, stdout, stderr := runBootstrapCLI(t, nil, args...); code != ExitOK {
			t.Errorf("exit %d: %s %s", code, stdout, stderr)
		}
	})

	t.Run("failures", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			env  []string
			args []string
			code int
			want string
		}{
			{"wrong password", []string{"PGPASSWORD=wrong-password"}, nil, ExitAuth, "28P01"},
			{"no password, no terminal", nil, nil, ExitUsage, "PGPASSWORD"},
			{"bad sslmode", env, []string{"--sslmode", "sometimes"}, ExitUsage, "verify-full"},
			{"bad port", env, []string{"--port", "70000"}, ExitUsage, "--port 70000"},
			{"untrusted server", env, []string{"--sslrootcert", ""}, ExitFailure, "certificate"},
			{"another schema, its own roles", env, []string{"--set", "database.schema=other", "--secrets-out", filepath.Join(dir, "other.json")}, ExitOK, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, stdout, stderr := runBootstrapCLI(t, tc.env, append(slicesClone(base), tc.args...)...)
				if code != tc.code || !strings.Contains(stderr, tc.want) {
					t.Errorf("exit %d, want %d; stderr %q should contain %q", code, tc.code, stderr, tc.want)
				}
				if strings.Contains(stdout+stderr, "wrong-password") {
					t.Error("password printed")
				}
			})
		}
	})

	t.Run("loose secrets file refused", func(t *testing.T) {
		loose := filepath.Join(dir, "loose.json")
		if err := os.WriteFile(loose, []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(loose, 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := runBootstrapCLI(t, env, append(base, "--secrets-out", loose)...)
		if code != ExitUsage || !strings.Contains(stderr, "chmod 600") {
			t.Errorf("exit %d: %s", code, stderr)
		}
	})
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// TestBootstrapPasswordSecretArnFake reads the administrator's secret through the AWS SDK from a
// FAKE Secrets Manager (an in-process httptest server; AWS is unreachable from tests), selected
// with the SDK's AWS_ENDPOINT_URL_SECRETS_MANAGER variable.
func TestBootstrapPasswordSecretArnFake(t *testing.T) {
	pg := pgtest.Start(t)
	const arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:dev/aurora-pg/db-AbCdEf"
	var reads int
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ SecretId string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" || in.SecretId != arn {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"__type":"ResourceNotFoundException","message":"not found"}`)
			return
		}
		reads++
		s, _ := json.Marshal(map[string]string{"username": pg.Superuser, "password": pg.Password})
		_ = json.NewEncoder(w).Encode(map[string]string{"ARN": arn, "Name": "dev/aurora-pg/db", "SecretString": string(s)})
	}))
	defer fake.Close()
	t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", fake.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFAKE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "fake-secret-key")
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))

	cfgPath := filepath.Join(t.TempDir(), "apgstack.yaml")
	if err := os.WriteFile(cfgPath, []byte("database:\n  name: postgres\n  schema: arnapp\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runBootstrapCLI(t, nil, "bootstrap", "--config", cfgPath, "--host", "127.0.0.1",
		"--port", strconv.Itoa(pg.Port), "--sslmode", "disable", "--password-secret", arn,
		"--secrets-out", filepath.Join(t.TempDir(), "roles.json"))
	if code != ExitOK || reads != 1 || !strings.Contains(stdout, "created: schema arnapp") {
		t.Errorf("exit %d, %d secret reads: %s %s", code, reads, stdout, stderr)
	}
	if strings.Contains(stdout+stderr, pg.Password) {
		t.Error("password printed")
	}
	code, _, stderr = runBootstrapCLI(t, nil, "bootstrap", "--config", cfgPath, "--host", "127.0.0.1",
		"--port", strconv.Itoa(pg.Port), "--sslmode", "disable", "--password-secret", arn+"-other")
	if code != ExitFailure || !strings.Contains(stderr, "ResourceNotFoundException") {
		t.Errorf("missing secret: exit %d: %s", code, stderr)
	}
}
