package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// policyCompliant passes every rule at every stage.
const policyCompliant = "../../cft/policy/testdata/compliant.yaml"

// policyVariant writes the compliant template with one edit.
func policyVariant(t *testing.T, old, new string) string {
	t.Helper()
	data, err := os.ReadFile(policyCompliant)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s lacks %q", policyCompliant, old)
	}
	path := filepath.Join(t.TempDir(), "variant.yaml")
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func failing(t *testing.T) string {
	return policyVariant(t, "StorageEncrypted: true", "StorageEncrypted: false")
}

// staged has deletion protection for prod only.
func staged(t *testing.T) string {
	return policyVariant(t, "DeletionProtection: !If [IsReplica, true, false]", "DeletionProtection: !If [IsProd, true, false]")
}

func TestPolicyCheckExitCodes(t *testing.T) {
	code, stdout, _ := run(t, nil, "policy", "check", failing(t))
	if code != ExitFailure || !strings.Contains(stdout, "[RDS-001] error") || !strings.Contains(stdout, "Cluster: Properties.StorageEncrypted") {
		t.Errorf("failing template: exit %d, stdout:\n%s", code, stdout)
	}
	if code, stdout, stderr := run(t, nil, "policy", "check", policyCompliant); code != ExitOK || !strings.Contains(stdout, "0 error(s), 0 warning(s)") {
		t.Errorf("compliant template: exit %d\n%s%s", code, stdout, stderr)
	}
	// Warnings do not fail.
	warn := policyVariant(t, "MasterUsername: pgadmin", "MasterUsername: postgres")
	if code, stdout, _ := run(t, nil, "policy", "check", warn); code != ExitOK || !strings.Contains(stdout, "[RDS-016] warning") {
		t.Errorf("warnings only: exit %d\n%s", code, stdout)
	}
}

func TestPolicyCheckStageFlag(t *testing.T) {
	policyStaged := staged(t)
	code, stdout, _ := run(t, nil, "policy", "check", "--stage", "prod", policyStaged)
	if code != ExitOK || strings.Contains(stdout, "RDS-004") {
		t.Errorf("prod: deletion protection is on: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = run(t, nil, "policy", "check", "--stage", "pre-prod", policyStaged)
	if code != ExitFailure || !strings.Contains(stdout, "[RDS-004] error (pre-prod)") {
		t.Errorf("pre-prod: exit %d\n%s", code, stdout)
	}
	for _, args := range [][]string{
		{"--stage", "staging"}, {"--format", "xml"}, {"--param", "novalue"}, {"--unstaged-as", "qa"},
	} {
		code, _, stderr := run(t, nil, append(append([]string{"policy", "check"}, args...), policyStaged)...)
		if code != ExitUsage || !strings.Contains(stderr, args[1]) {
			t.Errorf("%v: want exit 2 naming the value, got %d: %s", args, code, stderr)
		}
	}
}

func TestPolicyCheckFormats(t *testing.T) {
	policyFailing := failing(t)
	code, stdout, _ := run(t, nil, "policy", "check", "--format", "sarif", policyFailing)
	var log struct {
		Version string
		Runs    []struct{ Results []struct{ RuleID string } }
	}
	if err := json.Unmarshal([]byte(stdout), &log); err != nil || code != ExitFailure || log.Version != "2.1.0" || len(log.Runs[0].Results) == 0 {
		t.Errorf("sarif: exit %d, %v\n%s", code, err, stdout)
	}
	code, stdout, _ = run(t, nil, "policy", "check", "--output", "json", policyFailing)
	var rep struct{ Errors int }
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != ExitFailure || rep.Errors == 0 {
		t.Errorf("json: exit %d, %v\n%s", code, err, stdout)
	}
}

// A parameter without a default is taken from the parameters file beside the template, as synth
// writes it.
func TestPolicyCheckSiblingParameters(t *testing.T) {
	dir := t.TempDir()
	tpl := `Parameters:
  Encrypt:
    Type: String
Resources:
  Cluster:
    Type: AWS::RDS::DBCluster
    Properties:
      Engine: aurora-postgresql
      StorageEncrypted: !Ref Encrypt
`
	path := filepath.Join(dir, "db.yaml")
	if err := os.WriteFile(path, []byte(tpl), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stdout, _ := run(t, nil, "policy", "check", path)
	if !strings.Contains(stdout, "parameter Encrypt, which has no default") {
		t.Errorf("without a value: want the cannot-be-shown finding\n%s", stdout)
	}
	if err := os.WriteFile(filepath.Join(dir, "db.parameters.json"), []byte(`[{"ParameterKey":"Encrypt","ParameterValue":"true"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stdout, _ = run(t, nil, "policy", "check", path)
	if strings.Contains(stdout, "RDS-001") {
		t.Errorf("with Encrypt=true from db.parameters.json: want no RDS-001\n%s", stdout)
	}
}

func TestValidatePolicyHook(t *testing.T) {
	code, stdout, _ := run(t, nil, "validate", "--policy", failing(t))
	if code != ExitFailure || !strings.Contains(stdout, "[RDS-001] error") || !strings.Contains(stdout, "policy: 1 file(s)") {
		t.Errorf("validate --policy: exit %d\n%s", code, stdout)
	}
}

func TestPolicyRules(t *testing.T) {
	code, stdout, _ := run(t, nil, "policy", "rules", "--output", "json")
	var rules []struct{ ID, Severity, Source string }
	if err := json.Unmarshal([]byte(stdout), &rules); err != nil || code != ExitOK || len(rules) < 40 {
		t.Errorf("rules: exit %d, %v, %d rules", code, err, len(rules))
	}
}

// synth runs the policy checks on what it writes, findings on stderr.
func TestSynthRunsPolicy(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	_, _, stderr := run(t, nil, "synth", "--config", synthConfig(t), "-d", out)
	if !strings.Contains(stderr, "policy: 3 file(s)") {
		t.Errorf("synth: want the policy summary on stderr, got:\n%s", stderr)
	}
}
