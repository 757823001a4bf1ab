package cli

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/internal/twin"
	"github.com/apgstack/apgstack/internal/twin/api"
)

// TestFailoverAndRotateSecretCommands runs `apgstack failover` and `apgstack rotate-secret`
// against a real dev twin: the writer restarts in place, all four secrets rotate, bad input exits
// 2 before anything is asked of the supervisor, and a stopped twin is named as such.
func TestFailoverAndRotateSecretCommands(t *testing.T) {
	root, err := os.MkdirTemp("", "apgstack-cli-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil { // the server account must reach the state
		t.Fatal(err)
	}
	dir := filepath.Join(root, "state")
	var ports []string
	for len(ports) < 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if p >= 1150 && (len(ports) == 0 || ports[0] != strconv.Itoa(p)) {
			ports = append(ports, strconv.Itoa(p))
		}
	}
	path := filepath.Join(root, "apgstack.yaml")
	if code, _, stderr := run(t, nil, "init", "--config", path, "--set", "database.port="+ports[0], "--set", "target.local.readerPort="+ports[1]); code != ExitOK {
		t.Fatalf("init: %s", stderr)
	}
	cfg, err := apgstack.Load(path, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	common := []string{"--config", path, "--state-dir", dir}

	if code, _, stderr := run(t, nil, append([]string{"failover", "--yes"}, common...)...); code != ExitFailure || !strings.Contains(stderr, "no twin in") {
		t.Errorf("failover without a twin: exit %d, %s", code, stderr)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var runErr error
	done, ready := make(chan struct{}), make(chan struct{})
	go func() {
		runErr = twin.Supervise(ctx, twin.Options{Config: cfg, StateDir: dir}, nil, func(api.Status) { close(ready) })
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-ready:
	case <-done:
		t.Fatalf("supervisor: %v", runErr)
	case <-time.After(2 * time.Minute):
		t.Fatal("supervisor not ready")
	}

	if code, _, stderr := run(t, nil, append([]string{"failover", "--yes", "--target-instance", "instance1"}, common...)...); code != ExitUsage || !strings.Contains(stderr, `--target-instance "instance1": not a reader of this cluster (readers: none)`) {
		t.Errorf("failover to the writer: exit %d, %s", code, stderr)
	}
	code, stdout, stderr := run(t, nil, append([]string{"failover", "--yes"}, common...)...)
	if code != ExitOK || !strings.Contains(stdout, "writer instance1 restarted in place") {
		t.Errorf("failover: exit %d, %s %s", code, stdout, stderr)
	}
	code, stdout, stderr = run(t, nil, append([]string{"rotate-secret", "--role", "all", "-o", "json"}, common...)...)
	var res []api.Rotation
	if code != ExitOK || json.Unmarshal([]byte(stdout), &res) != nil || len(res) != 4 {
		t.Fatalf("rotate-secret: exit %d, %s %s", code, stdout, stderr)
	}
	for _, r := range res {
		if r.Error != "" || r.VersionID == "" {
			t.Errorf("rotation %+v", r)
		}
	}
	code, stdout, stderr = run(t, nil, append([]string{"rotate-secret", "--role", "rw"}, common...)...)
	if code != ExitOK || !strings.Contains(stdout, "ROLE") || !strings.Contains(stdout, "_rw") {
		t.Errorf("rotate-secret --role rw: exit %d, %s %s", code, stdout, stderr)
	}
	if code, _, stderr := run(t, nil, append([]string{"rotate-secret", "--role", "admin"}, common...)...); code != ExitUsage || !strings.Contains(stderr, `--role "admin": allowed are master, owner, rw, ro, all`) {
		t.Errorf("bad role: exit %d, %s", code, stderr)
	}
}
