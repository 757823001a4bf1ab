package stacks

import (
	"reflect"
	"testing"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/cft"
)

// TestNoInlinePolicies: no role of any stack keeps an inline policy (AWS Config
// iam-no-inline-policy-check in the HIPAA and NIST packs); each became a customer-managed policy
// the role lists, under the condition the role or its Fn::If gave it.
func TestNoInlinePolicies(t *testing.T) {
	cfg := apgstack.Default()
	cfg.Database.BootstrapS3Bucket, cfg.Database.BootstrapS3Key = "bucket", "bootstrap.zip"
	for _, kind := range Order {
		s := buildStack(t, cfg, kind)
		for _, r := range s.Template.ResourcesOfType("AWS::IAM::Role") {
			if r.Properties["Policies"] != nil {
				t.Errorf("%s %s keeps inline policies", kind, r.Name)
			}
		}
	}
}

func TestExternalizePolicies(t *testing.T) {
	doc := map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/k"}}}
	tpl := cft.New("")
	tpl.AddCondition("Banner", cft.Equals("a", "a"))
	tpl.AddCondition("Boot", cft.Equals("a", "a"))
	tpl.AddResource("Role", "AWS::IAM::Role", map[string]any{
		"ManagedPolicyArns": []any{"arn:aws:iam::aws:policy/X"},
		"Policies": []any{
			map[string]any{"PolicyName": "read-logs", "PolicyDocument": doc},
			cft.If("Banner", map[string]any{"PolicyName": "banner-policy", "PolicyDocument": doc}, cft.NoValue()),
		}})
	tpl.AddResource("BootRole", "AWS::IAM::Role", map[string]any{
		"Policies": []any{map[string]any{"PolicyName": "bootstrap", "PolicyDocument": doc}}}).Condition = "Boot"
	externalizePolicies(tpl)

	for _, tc := range []struct{ id, cond string }{{"RoleReadLogsPolicy", ""}, {"RoleBannerPolicy", "Banner"}, {"BootRoleBootstrapPolicy", "Boot"}} {
		p := tpl.Resource(tc.id)
		if p == nil || p.Type != "AWS::IAM::ManagedPolicy" || p.Condition != tc.cond || !reflect.DeepEqual(p.Properties["PolicyDocument"], doc) {
			t.Errorf("%s: %+v", tc.id, p)
		}
	}
	want := []any{"arn:aws:iam::aws:policy/X", cft.Ref("RoleReadLogsPolicy"), cft.If("Banner", cft.Ref("RoleBannerPolicy"), cft.NoValue())}
	if got := tpl.Resource("Role").Properties["ManagedPolicyArns"]; !reflect.DeepEqual(got, want) {
		t.Errorf("Role lists %v, want %v", got, want)
	}
	if got := tpl.Resource("BootRole").Properties["ManagedPolicyArns"]; !reflect.DeepEqual(got, []any{cft.Ref("BootRoleBootstrapPolicy")}) {
		t.Errorf("BootRole lists %v", got)
	}
}
