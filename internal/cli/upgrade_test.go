package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/apgstack/apgstack/internal/testkit/awsfake"
)

func TestVersionsOffline(t *testing.T) {
	cfg := initConfig(t)
	code, stdout, stderr := run(t, nil, "versions", "--config", cfg)
	if code != ExitOK || !strings.Contains(stdout, "17.7") || !strings.Contains(stdout, "STANDARD SUPPORT ENDS") {
		t.Fatalf("versions: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, _ = run(t, nil, "versions", "--config", cfg, "-o", "json")
	var doc struct {
		Versions []struct{ Version, Support string }
	}
	if code != ExitOK || json.Unmarshal([]byte(stdout), &doc) != nil || len(doc.Versions) < 5 {
		t.Fatalf("versions -o json: exit %d, one JSON document expected:\n%s", code, stdout)
	}
}

// A local twin is never upgraded across majors in place, and a directory without a twin is said
// to be one.
func TestUpgradeLocalRefusals(t *testing.T) {
	cfg := initConfig(t)
	code, _, stderr := run(t, nil, "upgrade", "--config", cfg, "--state-dir", t.TempDir(), "--engine-version", "17.7")
	if code != ExitFailure || !strings.Contains(stderr, "no twin in") {
		t.Errorf("upgrade without a twin: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := run(t, nil, "upgrade", "--config", cfg); code != ExitUsage || !strings.Contains(stderr, "--engine-version is required") {
		t.Errorf("upgrade without a version: exit %d\n%s", code, stderr)
	}
}

// TestFakeCLIMajorUpgradeBlueGreen runs `upgrade --target aws` against the FAKE of the AWS APIs:
// a 16.x cluster deployed by up goes to 17.7 through a Blue/Green deployment.
func TestFakeCLIMajorUpgradeBlueGreen(t *testing.T) {
	f := awsfake.New(t) // a FAKE of the AWS APIs
	flags := upFake(t, f, "dev", "--set", "database.engineVersion=16.11")
	code, stdout, stderr := runAWS(t, append([]string{"upgrade", "--yes", "--engine-version", "17.7"}, flags...)...)
	if code != ExitOK {
		t.Fatalf("upgrade: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "Blue/Green deployment") || !strings.Contains(stdout, "SWITCHOVER_COMPLETED") {
		t.Errorf("upgrade output:\n%s", stdout)
	}
}
