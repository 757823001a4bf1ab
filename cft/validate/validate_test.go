package validate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apgstack/apgstack/cft"
)

func readFixture(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// Each broken template gives exactly one error, with its own rule, on the entry and path named.
func TestBrokenTemplates(t *testing.T) {
	tests := []struct {
		file, rule, resource, path, message string
	}{
		{"unknown-property", RuleUnknownProperty, "VPC", "Properties.EnableDNSSupport", "did you mean EnableDnsSupport?"},
		{"dangling-ref", RuleRefTarget, "VPC", "Properties.CidrBlock", `"CidrBlock"`},
		{"dangling-sub", RuleRefTarget, "Topic", "Properties.TopicName", "${Stage} in Fn::Sub"},
		{"cycle", RuleCycle, "AppSG", "", "AppSG -> LbSG -> AppSG"},
		{"bad-enum", RuleEnum, "Logs", "Properties.RetentionInDays", `"45" is not an allowed value`},
		{"undefined-condition", RuleConditionTarget, "Topic", "Condition", `"IsProduction"`},
		{"undefined-if-condition", RuleConditionTarget, "Topic", "Properties.TopicName", `Fn::If: no condition is called "IsProd"`},
		{"missing-required", RuleRequired, "SubnetGroup", "Properties", "SubnetIds"},
		{"bad-default", RuleParameterDefault, "EnvironmentStage", "Default", `"staging" is not one of the AllowedValues (dev, test, pre-prod, prod)`},
		{"bad-default-pattern", RuleParameterDefault, "DBName", "Default", "does not match AllowedPattern"},
		{"bad-default-number", RuleParameterDefault, "DBPort", "Default", "less than MinValue 1150"},
		{"duplicate-export", RuleExportDuplicate, "VPCId", "Export.Name", `"${AWS::StackName}-VPC" is already exported by output VPC`},
		{"unknown-type", RuleUnknownType, "Cluster", "Type", "AWS::RDS::AuroraCluster"},
		{"getatt-missing", RuleGetAttTarget, "Alarm", "Properties.AlarmActions[0]", `no resource is called "AlarmTopic"`},
		{"depends-on-missing", RuleDependsOnTarget, "Topic", "DependsOn", `"Key"`},
		{"wrong-type", RulePropertyType, "VPC", "Properties.EnableDnsHostnames", "want boolean, got a list"},
		{"findinmap-missing-key", RuleFindInMapTarget, "Logs", "Properties.RetentionInDays", `Stage.prod has no key "Retain"`},
		{"condition-ref-resource", RuleConditionRef, "HasTopic", "Fn::Not[0].Fn::Equals[0]", "Topic is a resource"},
		{"condition-cycle", RuleConditionCycle, "A", "", "A -> B -> A"},
		{"hosted-rotation-no-transform", RuleTransform, "Rotation", "Properties.HostedRotationLambda", "AWS::SecretsManager-2024-09-16"},
		{"bad-parameter-type", RuleParameterType, "Enabled", "Type", `"Boolean"`},
		{"custom-no-token", RuleRequired, "Bootstrap", "Properties", "ServiceToken"},
		{"bad-deletion-policy", RuleResourceAttr, "Topic", "DeletionPolicy", `"Keep"`},
		{"list-where-scalar", RulePropertyType, "Subnet", "Properties.AvailabilityZone", "want string, got Fn::GetAZs, which gives a list"},
		{"scalar-where-list", RulePropertyType, "SubnetGroup", "Properties.SubnetIds", "want array, got Fn::ImportValue, which gives a single value"},
		{"output-list", RuleOutputValue, "AZs", "Value", "is a list"},
		{"sub-list-parameter", RuleIntrinsicForm, "Topic", "Properties.DisplayName", "Subnets is a list"},
		{"no-resources", RuleNoResources, "", "Resources", "at least one resource"},
		{"out-of-range", RuleRange, "Cluster", "Properties.BackupRetentionPeriod", "0 is less than the minimum 1"},
		{"serverless-no-transform", RuleTransform, "Function", "Type", "AWS::Serverless-2016-10-31"},
		{"condition-form", RuleConditionForm, "IsProd", "", "Ref is not a condition function"},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			seen[tt.file+".yaml"] = true
			file := filepath.Join("testdata", "broken", tt.file+".yaml")
			findings, tmpl := Bytes(readFixture(t, file), file)
			if tmpl == nil {
				t.Fatalf("did not parse: %v", findings)
			}
			var errs []Finding
			for _, f := range findings {
				if f.Severity == Error {
					errs = append(errs, f)
				}
			}
			if len(errs) != 1 {
				t.Fatalf("want exactly one error, got %d:\n%s", len(errs), lines(findings))
			}
			f := errs[0]
			if f.Rule != tt.rule || f.Resource != tt.resource || f.Path != tt.path || f.File != file {
				t.Errorf("got %s\nwant rule %s, resource %s, path %q", f, tt.rule, tt.resource, tt.path)
			}
			if !strings.Contains(f.Message, tt.message) {
				t.Errorf("message %q does not contain %q", f.Message, tt.message)
			}
		})
	}
	// Every fixture has its case.
	all, _ := filepath.Glob(filepath.Join("testdata", "broken", "*.yaml"))
	for _, f := range all {
		if !seen[filepath.Base(f)] {
			t.Errorf("fixture %s has no test case", f)
		}
	}
}

func lines(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString("  " + f.String() + "\n")
	}
	return b.String()
}

// The good fixture uses what validate must accept: Fn::If with AWS::NoValue, Sub with variables
// and literals, FindInMap with a computed key, strings for numbers and booleans, custom
// resources, nested stack outputs, list parameters, conditions built from conditions, and export
// names shared by outputs under exclusive conditions.
func TestGoodTemplate(t *testing.T) {
	findings, tmpl := Bytes(readFixture(t, "testdata/good.yaml"), "good.yaml")
	if tmpl == nil || len(findings) != 0 {
		t.Fatalf("want no findings, got:\n%s", lines(findings))
	}
}

// The three original AWS samples are valid CloudFormation. The bastion sample uses the deprecated
// AWS::AutoScaling::LaunchConfiguration, which the registry still describes; nothing to report.
func TestSeedTemplates(t *testing.T) {
	files, err := filepath.Glob("testdata/seed/*.yml")
	if err != nil || len(files) != 3 {
		t.Fatalf("want the three seed templates, got %v (%v)", files, err)
	}
	for _, file := range files {
		findings, tmpl := Bytes(readFixture(t, file), file)
		if tmpl == nil || len(findings) != 0 {
			t.Errorf("%s: want no findings, got:\n%s", file, lines(findings))
		}
	}
}

func TestParseError(t *testing.T) {
	findings, tmpl := Bytes([]byte("Resources:\n  A: [1, 2]\n"), "x.yaml")
	if tmpl != nil || len(findings) != 1 || findings[0].Rule != RuleParse || findings[0].Severity != Error {
		t.Fatalf("got %v", findings)
	}
}

// Findings built in Go (not parsed) are checked the same way.
func TestTemplateModel(t *testing.T) {
	tmpl := cft.New("built")
	tmpl.AddResource("Topic", "AWS::SNS::Topic", map[string]any{
		"TopicName": cft.If("Missing", "a", cft.NoValue()),
		"Bogus":     cft.Ref("Nothing"),
	})
	got := Template(tmpl, "built.yaml")
	want := []string{
		`built.yaml: Topic: Properties.Bogus: [ref-target] Ref Nothing: no parameter, resource or pseudo parameter is called "Nothing"`,
		`built.yaml: Topic: Properties.TopicName: [condition-target] Fn::If: no condition is called "Missing"`,
		`built.yaml: Topic: Properties.Bogus: [unknown-property] AWS::SNS::Topic has no property Bogus`,
	}
	if len(got) != len(want) {
		t.Fatalf("got:\n%s", lines(got))
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("finding %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
	if Errors(got) != 3 {
		t.Errorf("Errors = %d", Errors(got))
	}
}

// Read-only properties and unverifiable patterns are warnings, not errors; macros turn schema
// errors (an unknown attribute among them) into warnings.
func TestWarnings(t *testing.T) {
	src := `
Transform: [MyOrgMacro]
Parameters:
  Password:
    Type: String
    Default: abcdef1A
    AllowedPattern: '(?=.*[A-Z]).{8,}'
Resources:
  VPC:
    Type: AWS::EC2::VPC
    Properties:
      CidrBlock: 10.0.0.0/16
      DefaultSecurityGroup: sg-1
      Frobnicate: true
  Other:
    Type: MyOrg::Thing::Widget
  Reader:
    Type: AWS::SNS::Topic
    Condition: Never
Conditions:
  Never: !Equals [a, b]
Outputs:
  X:
    Value: !GetAtt VPC.NoSuchAttribute
  Y:
    Value: !Ref Reader
  Z:
    Value: !If [Never, !Ref Reader, none]
`
	findings, _ := Bytes([]byte(src), "w.yaml")
	rules := map[string]bool{}
	for _, f := range findings {
		if f.Severity != Warning {
			t.Errorf("want only warnings, got %s", f)
		}
		rules[f.Rule] = true
		if f.Rule == RuleConditionalRef && f.Resource != "Y" {
			t.Errorf("a reference inside Fn::If is guarded: %s", f)
		}
	}
	for _, r := range []string{RuleParameterPattern, RuleReadOnly, RuleUnknownProperty, RuleUnknownType, RuleGetAttAttribute, RuleConditionalRef} {
		if !rules[r] {
			t.Errorf("no %s warning in:\n%s", r, lines(findings))
		}
	}
}

// The Serverless transform adds resources (the function's role, for one) that references may
// name: not finding them is a warning.
func TestServerlessTransform(t *testing.T) {
	src := `
Transform: AWS::Serverless-2016-10-31
Resources:
  Function:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: provided.al2023
      Handler: bootstrap
      CodeUri: ./build
Outputs:
  Role:
    Value: !GetAtt FunctionRole.Arn
`
	findings, _ := Bytes([]byte(src), "sam.yaml")
	if len(findings) != 1 || findings[0].Severity != Warning || findings[0].Rule != RuleGetAttTarget {
		t.Errorf("want one getatt-target warning, got:\n%s", lines(findings))
	}
}

func TestFindingString(t *testing.T) {
	f := Finding{File: "a.yaml", Resource: "VPC", Path: "Properties.X", Rule: "unknown-property", Severity: Error, Message: "m"}
	if got := f.String(); got != "a.yaml: VPC: Properties.X: [unknown-property] m" {
		t.Errorf("got %q", got)
	}
	f = Finding{File: "a.yaml", Rule: "parse", Severity: Warning, Message: "m"}
	if got := f.String(); got != "a.yaml: [parse] warning: m" {
		t.Errorf("got %q", got)
	}
}

func BenchmarkSeedTemplates(b *testing.B) {
	files, _ := filepath.Glob("testdata/seed/*.yml")
	var data [][]byte
	for _, f := range files {
		data = append(data, readFixture(b, f))
	}
	for b.Loop() {
		for i, d := range data {
			Bytes(d, files[i])
		}
	}
}

// TestGetAttAttributes: Fn::GetAtt names a return value of the type (a read-only property, nested
// ones with dots), a top-level property, or a key under a map; anything else is an error.
func TestGetAttAttributes(t *testing.T) {
	for _, tc := range []struct {
		attr string
		ok   bool
	}{
		{"Cluster.Endpoint.Address", true},
		{"Cluster.ReadEndpoint.Address", true},
		{"Cluster.Endpoint.Port", true},
		{"Cluster.DBClusterArn", true},
		{"Cluster.Endpoint.Addr", false},
		{"Cluster.Endpoints", false},
		{"Cluster.Port", true}, // a property
		{"VPC.CidrBlock", true},
		{"VPC.DefaultSecurityGroup", true},
		{"VPC.NoSuchAttribute", false},
		{"Custom.Anything.At.All", true},
		{"Nested.Outputs.VPC", true},
	} {
		t.Run(tc.attr, func(t *testing.T) {
			src := `
Resources:
  VPC:
    Type: AWS::EC2::VPC
    Properties: {CidrBlock: 10.0.0.0/16}
  Cluster:
    Type: AWS::RDS::DBCluster
    Properties: {Engine: aurora-postgresql}
  Custom:
    Type: Custom::Thing
    Properties: {ServiceToken: arn:aws:lambda:eu-west-1:123456789012:function:f}
  Nested:
    Type: AWS::CloudFormation::Stack
    Properties: {TemplateURL: https://example.com/t.yaml}
Outputs:
  X:
    Value: !GetAtt ` + tc.attr + "\n"
			findings, _ := Bytes([]byte(src), "getatt.yaml")
			var bad []Finding
			for _, f := range findings {
				if f.Rule == RuleGetAttAttribute {
					bad = append(bad, f)
				}
			}
			switch {
			case tc.ok && len(bad) > 0:
				t.Errorf("want no finding, got:\n%s", lines(bad))
			case !tc.ok && (len(bad) != 1 || bad[0].Severity != Error || !strings.Contains(bad[0].Message, "has no attribute")):
				t.Errorf("want one error, got:\n%s", lines(findings))
			}
		})
	}
}
