package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

func explainConfig(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "apgstack.yaml")
	if code, _, stderr := run(t, nil, "init", "--config", path,
		"--set", "database.bootstrapS3Bucket=apgstack-artifacts", "--set", "database.bootstrapS3Key=apgstack/bootstrap.zip"); code != ExitOK {
		t.Fatalf("init: exit %d: %s", code, stderr)
	}
	return path
}

func explainJSON(t *testing.T, args ...string) explained {
	t.Helper()
	code, stdout, stderr := run(t, nil, append([]string{"explain", "--output", "json"}, args...)...)
	if code != ExitOK {
		t.Fatalf("explain %v: exit %d: %s", args, code, stderr)
	}
	var x explained
	if err := json.Unmarshal([]byte(stdout), &x); err != nil {
		t.Fatalf("explain --output json: %v\n%s", err, stdout)
	}
	return x
}

func (x explained) resource(name string) *explainedResource {
	for i := range x.Resources {
		if x.Resources[i].Name == name {
			return &x.Resources[i]
		}
	}
	return nil
}

func TestExplainStages(t *testing.T) {
	cfg := explainConfig(t)
	dev := explainJSON(t, "--config", cfg)
	prod := explainJSON(t, "--config", cfg, "--stage", "prod")
	if dev.Parameters["EnvironmentStage"] != "dev" || prod.Parameters["EnvironmentStage"] != "prod" {
		t.Fatalf("stages: %s, %s", dev.Parameters["EnvironmentStage"], prod.Parameters["EnvironmentStage"])
	}
	if dev.resource("AuroraDBSecondInstance") != nil || prod.resource("AuroraDBSecondInstance") == nil {
		t.Error("a reader exists in prod only")
	}
	if got := prod.resource("AuroraDBCluster").Properties["BackupRetentionPeriod"]; got != float64(35) {
		t.Errorf("prod backup retention %v", got)
	}
	if !prod.Conditions["IsProd"] || dev.Conditions["IsProd"] {
		t.Error("conditions")
	}
	if dev.resource("DBBootStrapLambdaFnTrigger") == nil {
		t.Error("the configured bootstrap is explained")
	}
	restored := explainJSON(t, "--config", cfg, "--snapshot", "my-final-snapshot")
	if restored.resource("AuroraMasterSecret") != nil || restored.resource("DBBootStrapLambdaFnTrigger") != nil {
		t.Error("a restore creates no master secret and no bootstrap")
	}
	if got := restored.resource("AuroraDBCluster").Properties["SnapshotIdentifier"]; got != "my-final-snapshot" {
		t.Errorf("SnapshotIdentifier %v", got)
	}
}

func TestExplainText(t *testing.T) {
	cfg := explainConfig(t)
	code, stdout, stderr := run(t, nil, "explain", "--config", cfg, "--stage", "prod")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"database stack apgstack-database:",
		"IsReplica=true",
		"AuroraDBSecondInstance (AWS::RDS::DBInstance)",
		"  after: AuroraDBFirstInstance",
		"  MonitoringInterval: 1\n",
		"  PerformanceInsightsRetentionPeriod: 465\n",
		"  DeletionProtection: true\n",
		"  on delete: Snapshot\n",
		"  KeyPolicy.Statement[0].Principal.AWS: arn:${AWS::Partition}:iam::${AWS::AccountId}:root\n",
		"  Tags: EnvironmentStage=prod, ",
		"  PSQLCommandLine: !Join ['', [psql --host=, !GetAtt AuroraDBCluster.Endpoint.Address, ' --port=',",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("explain output lacks %q", want)
		}
	}
}

func TestExplainBadInput(t *testing.T) {
	cfg := explainConfig(t)
	for _, args := range [][]string{
		{"--stage", "staging"},
		{"--snapshot", "1-not-a-snapshot"},
		{"--stack", "cache"},
		{"--output", "yaml"},
	} {
		code, stdout, stderr := run(t, nil, append([]string{"explain", "--config", cfg}, args...)...)
		if code != ExitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, ExitUsage)
		}
		if stdout != "" || !strings.Contains(stderr, strings.TrimPrefix(args[1], "--")) {
			t.Errorf("%v: the error must name the value: stdout %q stderr %q", args, stdout, stderr)
		}
	}
}
