package policy_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/cft"
	"github.com/apgstack/apgstack/cft/policy"
)

var update = flag.Bool("update", false, "rewrite docs/policy-rules.md from the rule table")

func load(t *testing.T, path string) *cft.Template {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := cft.Parse(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return tpl
}

func check(t *testing.T, path string) (findings, suppressed []policy.Finding) {
	t.Helper()
	fs, sup, err := policy.Check(path, load(t, path), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return fs, sup
}

func ofRule(fs []policy.Finding, id string) []policy.Finding {
	var out []policy.Finding
	for _, f := range fs {
		if f.Rule == id {
			out = append(out, f)
		}
	}
	return out
}

// Each rule fires on its failing fixture and not on its passing one.
func TestRuleFixtures(t *testing.T) {
	for _, r := range policy.Rules() {
		t.Run(r.ID, func(t *testing.T) {
			dir := filepath.Join("testdata", "rules", r.ID)
			fails, _ := check(t, filepath.Join(dir, "fail.yaml"))
			if len(ofRule(fails, r.ID)) == 0 {
				t.Errorf("fail.yaml: %s did not fire; findings: %v", r.ID, fails)
			}
			for _, f := range ofRule(fails, r.ID) {
				if f.Severity != r.Severity || f.Resource == "" || f.File == "" {
					t.Errorf("fail.yaml: finding %+v: want severity %s, a resource and a file", f, r.Severity)
				}
			}
			passes, sup := check(t, filepath.Join(dir, "pass.yaml"))
			if got := append(ofRule(passes, r.ID), ofRule(sup, r.ID)...); len(got) > 0 {
				t.Errorf("pass.yaml: %s fired: %v", r.ID, got)
			}
		})
	}
	// No fixture without a rule (a renamed rule leaves none behind).
	dirs, err := os.ReadDir(filepath.Join("testdata", "rules"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if policy.Lookup(d.Name()) == nil {
			t.Errorf("testdata/rules/%s: no such rule", d.Name())
		}
	}
}

func TestRuleTable(t *testing.T) {
	rules := policy.Rules()
	if len(rules) < 40 {
		t.Errorf("%d rules, want at least 40", len(rules))
	}
	for _, r := range rules {
		if r.ID == "" || r.Title == "" || r.Rationale == "" || r.Fix == "" || r.Source == "" || len(r.Types) == 0 {
			t.Errorf("rule %+v: id, title, rationale, fix, source and types are all required", r)
		}
		if r.Severity != policy.Error && r.Severity != policy.Warning {
			t.Errorf("rule %s: severity %q", r.ID, r.Severity)
		}
		if strings.HasSuffix(r.Rationale, ".") || strings.HasSuffix(r.Fix, ".") {
			t.Errorf("rule %s: rationale and fix are one line without a final period (the docs add it)", r.ID)
		}
	}
}

// Deletion protection and backups set only under the prod condition are right for prod and
// caught on the stages that need them.
func TestStageDependent(t *testing.T) {
	fs, _ := check(t, "testdata/stage/deletion-protection.yaml")
	dp := ofRule(fs, "RDS-004")
	if len(dp) != 1 || !slices.Equal(dp[0].Stages, []string{"pre-prod"}) {
		t.Errorf("RDS-004: want one finding for pre-prod only (dev and test need no deletion protection, prod has it), got %v", dp)
	}
	if dp[0].Path != "Properties.DeletionProtection" || dp[0].Resource != "Cluster" {
		t.Errorf("RDS-004: want Cluster Properties.DeletionProtection, got %+v", dp[0])
	}
	backups := ofRule(fs, "RDS-005")
	var stages []string
	for _, f := range backups {
		stages = append(stages, f.Stages...)
	}
	if !slices.Equal(stages, []string{"dev", "test", "pre-prod"}) {
		t.Errorf("RDS-005: want findings for dev, test and pre-prod (not prod), got %v", backups)
	}
	if len(backups) != 1 {
		t.Errorf("RDS-005: identical findings across stages must be merged: %v", backups)
	}
	if !strings.Contains(backups[0].String(), "(dev, test, pre-prod)") {
		t.Errorf("text form names the stages: %s", backups[0])
	}
}

func TestUnresolvedNeverCompliant(t *testing.T) {
	fs, _ := check(t, "testdata/stage/unresolved.yaml")
	enc := ofRule(fs, "RDS-001")
	if len(enc) != 1 || !strings.Contains(enc[0].Message, "parameter Encrypt") || !strings.Contains(enc[0].Message, "cannot be shown compliant") {
		t.Errorf("StorageEncrypted from a parameter without default: want a finding naming it, got %v", enc)
	}
	dp := ofRule(fs, "RDS-004")
	if len(dp) != 1 || !strings.Contains(dp[0].Message, "!ImportValue") || !strings.Contains(dp[0].Message, "cannot be shown compliant") {
		t.Errorf("DeletionProtection from another stack: want a finding, got %v", dp)
	}
	// A parameter with a default takes it: 35 days satisfies prod.
	if b := ofRule(fs, "RDS-005"); len(b) != 0 {
		t.Errorf("BackupRetentionPeriod from a default of 35: want no finding, got %v", b)
	}
}

func TestSnapshotVariants(t *testing.T) {
	fs, _ := check(t, "testdata/stage/snapshot.yaml")
	if enc := ofRule(fs, "RDS-001"); len(enc) != 1 || !slices.Equal(enc[0].Stages, []string{"dev+snapshot", "test+snapshot", "pre-prod+snapshot", "prod+snapshot"}) {
		t.Errorf("RDS-001: want one finding for every stage with a snapshot, got %v", enc)
	}
	// A restored cluster keeps the snapshot's master user: RDS-016 only without a snapshot.
	if u := ofRule(fs, "RDS-016"); len(u) != 1 || !slices.Equal(u[0].Stages, bestpractice.StageNames) {
		t.Errorf("RDS-016: want one finding for the four stages without a snapshot, got %v", u)
	}
}

func TestStagesOption(t *testing.T) {
	tpl := load(t, "testdata/stage/deletion-protection.yaml")
	fs, _, err := policy.Check("x.yaml", tpl, policy.Options{Stages: []string{"prod"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ofRule(fs, "RDS-004")) != 0 || len(ofRule(fs, "RDS-005")) != 0 {
		t.Errorf("prod only: want no stage finding, got %v", fs)
	}
	if _, _, err := policy.Check("x.yaml", tpl, policy.Options{Stages: []string{"staging"}}); err == nil || !strings.Contains(err.Error(), `"staging"`) || !strings.Contains(err.Error(), "pre-prod") {
		t.Errorf("unknown stage: want an error naming it and the allowed stages, got %v", err)
	}
}

func TestSuppressions(t *testing.T) {
	fs, sup := check(t, "testdata/stage/suppressed.yaml")
	if len(sup) != 1 || sup[0].Rule != "RDS-016" || !strings.Contains(sup[0].Reason, "migrate") {
		t.Errorf("want RDS-016 suppressed with its reason, got %v", sup)
	}
	if len(ofRule(fs, "RDS-016")) != 0 {
		t.Errorf("a suppressed finding is not also reported unsuppressed")
	}
	bad := ofRule(fs, policy.SuppressionRule)
	if len(bad) != 2 || bad[0].Severity != policy.Error {
		t.Fatalf("want two %s errors (no reason; unknown rule), got %v", policy.SuppressionRule, bad)
	}
	msgs := bad[0].Message + " | " + bad[1].Message
	if !strings.Contains(msgs, "RDS-024 has no reason") || !strings.Contains(msgs, `"NOPE-999" does not exist`) {
		t.Errorf("messages: %s", msgs)
	}
	// Without a reason the suppression does not apply.
	if len(ofRule(fs, "RDS-024")) != 1 {
		t.Errorf("RDS-024 must stay reported when its suppression has no reason")
	}
}

func report(t *testing.T) *policy.Report {
	t.Helper()
	files := map[string]*cft.Template{}
	for _, p := range []string{"testdata/stage/suppressed.yaml", "testdata/rules/RDS-001/fail.yaml"} {
		files[p] = load(t, p)
	}
	r, err := policy.Run(files, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range r.Files {
		data, _ := os.ReadFile(p)
		policy.Locate(p, data, r.Findings)
		policy.Locate(p, data, r.Suppressed)
	}
	return r
}

func TestTextAndJSON(t *testing.T) {
	r := report(t)
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, want := range []string{
		"testdata/rules/RDS-001/fail.yaml: Cluster: Properties.StorageEncrypted: [RDS-001] error: StorageEncrypted is false",
		"suppressed (1):\n  testdata/stage/suppressed.yaml: Cluster: Properties.MasterUsername: [RDS-016] warning",
		"— suppressed: the master user name is fixed",
		"policy: 2 file(s), ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text output lacks %q:\n%s", want, text)
		}
	}
	b.Reset()
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Findings   []policy.Finding
		Suppressed []policy.Finding
		Errors     int
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Errors != r.Errors() || got.Errors == 0 || len(got.Suppressed) != 1 || len(got.Findings) != len(r.Findings) {
		t.Errorf("JSON: %+v", got)
	}
	if r.Findings[0].Line == 0 {
		t.Errorf("Locate: want a line for %+v", r.Findings[0])
	}
}

func TestSARIF(t *testing.T) {
	r := report(t)
	var b bytes.Buffer
	if err := r.WriteSARIF(&b); err != nil {
		t.Fatal(err)
	}
	var log struct {
		Version string `json:"version"`
		Schema  string `json:"$schema"`
		Runs    []struct {
			Tool struct {
				Driver struct {
					Name  string
					Rules []struct {
						ID                   string
						DefaultConfiguration struct{ Level string }
					}
				}
			}
			Results []struct {
				RuleID    string
				RuleIndex int
				Level     string
				Message   struct{ Text string }
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string }
						Region           struct{ StartLine int }
					}
					LogicalLocations []struct{ Name, Kind string }
				}
				Suppressions []struct{ Kind, Justification string }
			}
		}
	}
	if err := json.Unmarshal(b.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	if log.Version != "2.1.0" || !strings.Contains(log.Schema, "sarif-2.1.0") || len(log.Runs) != 1 {
		t.Fatalf("SARIF header: %s %s %d runs", log.Version, log.Schema, len(log.Runs))
	}
	run := log.Runs[0]
	if len(run.Tool.Driver.Rules) != len(policy.Rules()) {
		t.Errorf("driver lists %d rules, want %d", len(run.Tool.Driver.Rules), len(policy.Rules()))
	}
	if len(run.Results) != len(r.Findings)+len(r.Suppressed) {
		t.Errorf("%d results, want %d", len(run.Results), len(r.Findings)+len(r.Suppressed))
	}
	suppressed := 0
	for _, res := range run.Results {
		if run.Tool.Driver.Rules[res.RuleIndex].ID != res.RuleID {
			t.Errorf("result %s: ruleIndex %d points at %s", res.RuleID, res.RuleIndex, run.Tool.Driver.Rules[res.RuleIndex].ID)
		}
		loc := res.Locations[0]
		if loc.PhysicalLocation.ArtifactLocation.URI == "" || loc.PhysicalLocation.Region.StartLine == 0 || loc.LogicalLocations[0].Name == "" {
			t.Errorf("result %s: location %+v", res.RuleID, loc)
		}
		if len(res.Suppressions) > 0 {
			suppressed++
			if res.Suppressions[0].Kind != "inSource" || res.Suppressions[0].Justification == "" {
				t.Errorf("suppression %+v", res.Suppressions[0])
			}
		}
	}
	if suppressed != 1 {
		t.Errorf("%d suppressed results, want 1", suppressed)
	}
}

// docs/policy-rules.md is generated from the rule table; -update rewrites it.
func TestDocs(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "policy-rules.md")
	want := policy.Markdown()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cft/policy -run TestDocs -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale: run go test ./cft/policy -run TestDocs -update", path)
	}
	for _, r := range policy.Rules() {
		if !bytes.Contains(got, []byte("### "+r.ID+"\n")) {
			t.Errorf("docs lack rule %s", r.ID)
		}
	}
}

// The stage table is what stage-dependent rules apply: a sanity check that it has the four
// stages the evaluation walks.
func TestStagesAreTheBestPracticeStages(t *testing.T) {
	if !slices.Equal(bestpractice.StageNames, []string{"dev", "test", "pre-prod", "prod"}) {
		t.Errorf("stages changed: %v; review the stage-dependent rules", bestpractice.StageNames)
	}
}

// The reference template passes every rule, errors and warnings, at every stage.
func TestCompliantTemplate(t *testing.T) {
	fs, sup := check(t, "testdata/compliant.yaml")
	if len(fs) != 0 || len(sup) != 0 {
		for _, f := range append(fs, sup...) {
			t.Errorf("%s", f)
		}
	}
}

func TestShellLogGroupFoundByName(t *testing.T) {
	fs, _ := check(t, "testdata/stage/shell-logs.yaml")
	got := ofRule(fs, "LOGS-002")
	if len(got) != 1 || got[0].Resource != "ShellLogs" || !strings.Contains(got[0].Message, "shell and SSH logs from LaunchTemplate") {
		t.Errorf("want LOGS-002 on ShellLogs only, got %v", got)
	}
}

func TestAutoScalingPublisherNeedsTheServiceLinkedRole(t *testing.T) {
	fs, _ := check(t, "testdata/stage/asg-topic.yaml")
	got := ofRule(fs, "SNS-002")
	if len(got) != 1 || !strings.Contains(got[0].Message, "Auto Scaling service-linked role publishes to Topic (through Group)") {
		t.Errorf("want SNS-002 for the Auto Scaling role, got %v", got)
	}
}

// A condition on a parameter without a value is unknown: the placeholder does not decide it.
func TestUnknownConditionNeverCompliant(t *testing.T) {
	fs, _ := check(t, "testdata/stage/unknown-condition.yaml")
	dp := ofRule(fs, "RDS-004")
	if len(dp) != 1 || !strings.Contains(dp[0].Message, "condition Protected, which depends on parameter Protect") {
		t.Errorf("want RDS-004 naming the unknown condition, got %v", dp)
	}
}
