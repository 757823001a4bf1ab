package cli

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apgstack/apgstack/cft"
)

const goodTemplate = `AWSTemplateFormatVersion: '2010-09-09'
Resources:
  VPC:
    Type: AWS::EC2::VPC
    Properties:
      CidrBlock: 10.0.0.0/16
Outputs:
  VPC:
    Value: !Ref VPC
    Export:
      Name: !Sub '${AWS::StackName}-VPC'
`

const brokenTemplate = `Resources:
  VPC:
    Type: AWS::EC2::VPC
    Properties:
      CidrBlock: !Ref Cidr
      EnableDNSSupport: true
`

func writeTemplates(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestValidateCommand(t *testing.T) {
	dir := writeTemplates(t, map[string]string{"good.yaml": goodTemplate, "broken.yaml": brokenTemplate, "bad.yaml": "Resources: [1]\n"})
	good, broken, bad := filepath.Join(dir, "good.yaml"), filepath.Join(dir, "broken.yaml"), filepath.Join(dir, "bad.yaml")

	t.Run("no findings", func(t *testing.T) {
		code, stdout, stderr := run(t, nil, "validate", good)
		if code != ExitOK || stdout != "" || stderr != good+": OK\n" {
			t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})
	t.Run("findings", func(t *testing.T) {
		code, stdout, stderr := run(t, nil, "validate", good, broken)
		if code != ExitFailure {
			t.Errorf("exit %d, want 1; stderr %q", code, stderr)
		}
		want := broken + `: VPC: Properties.CidrBlock: [ref-target] Ref Cidr: no parameter, resource or pseudo parameter is called "Cidr"` + "\n" +
			broken + ": VPC: Properties.EnableDNSSupport: [unknown-property] AWS::EC2::VPC has no property EnableDNSSupport (did you mean EnableDnsSupport?)\n"
		if stdout != want {
			t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
		}
		if !strings.Contains(stderr, good+": OK") || !strings.Contains(stderr, "2 errors") {
			t.Errorf("stderr %q", stderr)
		}
	})
	t.Run("json", func(t *testing.T) {
		code, stdout, _ := run(t, nil, "validate", "--output", "json", good, broken)
		if code != ExitFailure {
			t.Errorf("exit %d, want 1", code)
		}
		var got []fileResult
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("%v: %s", err, stdout)
		}
		if len(got) != 2 || !got[0].OK || len(got[0].Findings) != 0 || got[1].OK || got[1].Errors != 2 ||
			got[1].Findings[1].Rule != "unknown-property" || got[1].Findings[1].Resource != "VPC" || got[1].Findings[1].Path != "Properties.EnableDNSSupport" {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("unreadable and unparseable", func(t *testing.T) {
		missing := filepath.Join(dir, "missing.yaml")
		code, stdout, _ := run(t, nil, "validate", good, missing, bad)
		if code != ExitUsage {
			t.Errorf("exit %d, want 2", code)
		}
		if !strings.Contains(stdout, missing+": [read] no such file") || !strings.Contains(stdout, bad+": [parse] ") {
			t.Errorf("stdout %q", stdout)
		}
	})
	t.Run("stdin", func(t *testing.T) {
		var out, errb strings.Builder
		code := Main(t.Context(), []string{"validate", "-"}, strings.NewReader(brokenTemplate), &out, &errb, nil)
		if code != ExitFailure || !strings.HasPrefix(out.String(), "-: VPC: ") {
			t.Errorf("exit %d, stdout %q", code, out.String())
		}
	})
	t.Run("no files", func(t *testing.T) {
		if code, _, _ := run(t, nil, "validate"); code != ExitUsage {
			t.Errorf("exit %d, want 2", code)
		}
	})
}

// synth fails on validation errors, in templates given as built or only as written files.
func TestValidateSynthesizedRejectsErrors(t *testing.T) {
	dir := writeTemplates(t, map[string]string{"network.yaml": brokenTemplate, "bastion.yaml": goodTemplate})
	var errb strings.Builder
	a := &App{Stderr: &errb}
	files := map[string]*cft.Template{filepath.Join(dir, "network.yaml"): nil, filepath.Join(dir, "bastion.yaml"): nil}
	err := validateSynthesized(a, files)
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != ExitFailure {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(errb.String(), "network.yaml: VPC: Properties.CidrBlock: [ref-target]") {
		t.Errorf("stderr %q", errb.String())
	}
	delete(files, filepath.Join(dir, "network.yaml"))
	if err := validateSynthesized(a, files); err != nil {
		t.Errorf("good template: %v", err)
	}
	built := cft.New("built")
	built.AddResource("Topic", "AWS::SNS::Topic", map[string]any{"DisplayName": cft.Ref("Missing")})
	errb.Reset()
	err = validateSynthesized(a, map[string]*cft.Template{"x.yaml": built})
	if !errors.As(err, &ee) || !strings.Contains(errb.String(), "x.yaml: Topic: Properties.DisplayName: [ref-target]") {
		t.Errorf("built template: err %v, stderr %q", err, errb.String())
	}
}

// validate --policy -o json prints one JSON document: the files' findings and the policy report.
func TestValidatePolicyJSONIsOneDocument(t *testing.T) {
	dir := writeTemplates(t, map[string]string{"good.yaml": goodTemplate})
	_, stdout, stderr := run(t, nil, "validate", "--policy", "-o", "json", filepath.Join(dir, "good.yaml"))
	dec := json.NewDecoder(strings.NewReader(stdout))
	var doc struct {
		Files  []fileResult    `json:"files"`
		Policy json.RawMessage `json:"policy"`
	}
	if err := dec.Decode(&doc); err != nil || len(doc.Files) != 1 || len(doc.Policy) == 0 {
		t.Fatalf("not one document with files and policy: %v\n%s\n%s", err, stdout, stderr)
	}
	if dec.More() {
		t.Errorf("more than one JSON document on stdout:\n%s", stdout)
	}
}
