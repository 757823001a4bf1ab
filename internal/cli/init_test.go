package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apgstack/apgstack"
)

// run drives the command line as a user would, with its own environment.
func run(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, strings.NewReader(""), &out, &errb, env)
	return code, out.String(), errb.String()
}

func TestInitWritesAValidFileAndRefusesToOverwrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "apgstack.yaml")
	code, stdout, stderr := run(t, nil, "init", "--config", path, "--set", "database.port=6000")
	if code != ExitOK {
		t.Fatalf("init: exit %d: %s", code, stderr)
	}
	if strings.TrimSpace(stdout) != path {
		t.Errorf("init prints the path it wrote, got %q", stdout)
	}
	cfg, err := apgstack.Load(path, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Database.Port != 6000 {
		t.Errorf("--set value not written: port %d", cfg.Database.Port)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := run(t, nil, "init", "--config", path); code != ExitUsage || !strings.Contains(stderr, "--force") {
		t.Errorf("second init: exit %d, %s", code, stderr)
	}
}

func TestBadConfigurationExitsTwoAndNamesEveryField(t *testing.T) {
	path := filepath.Join(t.TempDir(), "apgstack.yaml")
	if err := os.WriteFile(path, []byte("network:\n  classB: 300\ndatabase:\n  port: 22\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run(t, []string{"APGSTACK_ENVIRONMENT_STAGE=qa"}, "init", "--config", filepath.Join(t.TempDir(), "x.yaml"), "--set", "network.classB=999")
	if code != ExitUsage || !strings.Contains(stderr, "network.classB") {
		t.Errorf("init with a bad --set: exit %d: %s", code, stderr)
	}
	// Any command that reads the configuration reports all bad fields with exit 2.
	a := &App{ConfigPath: path, Environ: []string{"APGSTACK_ENVIRONMENT_STAGE=qa"}}
	_, err := a.Config(nil)
	if err == nil {
		t.Fatal("bad configuration accepted")
	}
	for _, want := range []string{"network.classB", "300", "database.port", "22", "environment.stage", "qa", "from 1150 to 65535"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if ee, ok := err.(*ExitError); !ok || ee.Code != ExitUsage {
		t.Errorf("want exit code 2, got %#v", err)
	}
}

func TestUnknownCommandIsUsage(t *testing.T) {
	if code, _, _ := run(t, nil, "no-such-command"); code != ExitUsage {
		t.Errorf("exit %d, want 2", code)
	}
	if code, _, stderr := run(t, nil, "--output", "yaml", "init", "--config", filepath.Join(t.TempDir(), "a.yaml")); code != ExitOK {
		t.Errorf("init ignores --output: exit %d %s", code, stderr)
	}
}

// init keeps the twins' state out of git: it writes or extends .gitignore, once, and says so.
func TestInitIgnoresTheStateInGit(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".gitignore"), []byte("bin/"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run(t, nil, "init", "--config", filepath.Join(dir, "apgstack.yaml"))
	if code != ExitOK || !strings.Contains(stderr, "added /.apgstack*") {
		t.Fatalf("init: exit %d\n%s", code, stderr)
	}
	if code, _, stderr = run(t, nil, "init", "--force", "--config", filepath.Join(dir, "apgstack.yaml")); code != ExitOK || strings.Contains(stderr, "added") {
		t.Errorf("second init: exit %d, %s", code, stderr)
	}
	data, _ := os.ReadFile(filepath.Join(dir, ".gitignore"))
	if got := string(data); !strings.HasPrefix(got, "bin/\n") || strings.Count(got, "/.apgstack*") != 1 {
		t.Errorf(".gitignore:\n%s", got)
	}
}

// An interrupt reads as one, with exit 130.
func TestInterruptedSaysSo(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{context.Canceled, "interrupted"},
		{fmt.Errorf("wait for stack: %w", context.Canceled), "wait for stack: interrupted"},
		{errors.New("disk full"), "disk full"},
	} {
		if got := userMessage(tc.err); got != tc.want {
			t.Errorf("userMessage(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
