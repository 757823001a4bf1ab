package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/apgstack/apgstack/internal/twin"
	"github.com/apgstack/apgstack/internal/twin/api"
)

// TestFailoverAndRotateSecretCommands runs `apgstack failover` and `apgstack rotate-secret`
// against a real dev twin: the writer restarts in place, all four secrets rotate, bad input exits
// 2 before anything is asked of the supervisor, and a stopped twin is named as such.
func TestFailoverAndRotateSecretCommands(t *testing.T) {
	dir, cfg, common := devProject(t)

	if code, _, stderr := run(t, nil, append([]string{"failover", "--yes"}, common...)...); code != ExitFailure || !strings.Contains(stderr, "no twin in") {
		t.Errorf("failover without a twin: exit %d, %s", code, stderr)
	}

	supervise(t, twin.Options{Config: cfg, StateDir: dir})

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
