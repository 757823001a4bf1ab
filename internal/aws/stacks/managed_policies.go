package stacks

import (
	"strings"
	"unicode"

	"github.com/apgstack/apgstack/cft"
)

// Customer-managed instead of inline policies. The HIPAA and NIST 800-53 conformance packs
// (AWS Config iam-no-inline-policy-check) and checkov want a role's permissions in managed
// policies, which can be reviewed, versioned and reused on their own. The builders write a role's
// permissions inline, next to the role, which is easier to read; Build turns each inline policy
// into an AWS::IAM::ManagedPolicy that the role lists in ManagedPolicyArns — the role then
// depends on its policies, so nothing that uses the role starts before its permissions exist.

// externalizePolicies moves every role's inline policies into customer-managed policies.
func externalizePolicies(t *cft.Template) {
	for _, r := range append([]*cft.Resource(nil), t.Resources...) {
		list, _ := r.Properties["Policies"].([]any)
		if r.Type != "AWS::IAM::Role" || len(list) == 0 {
			continue
		}
		var keep []any
		arns, _ := r.Properties["ManagedPolicyArns"].([]any)
		for _, e := range list {
			cond, value := r.Condition, e
			// A policy under Fn::If [C, policy, AWS::NoValue] exists when C holds.
			if fn, arg, ok := cft.Intrinsic(e); ok && fn == "Fn::If" {
				args, _ := arg.([]any)
				c, _ := args[0].(string)
				if len(args) != 3 || r.Condition != "" || !isNoValue(args[2]) {
					keep = append(keep, e)
					continue
				}
				cond, value = c, args[1]
			}
			p, _ := value.(map[string]any)
			name, _ := p["PolicyName"].(string)
			if name == "" || p["PolicyDocument"] == nil {
				keep = append(keep, e)
				continue
			}
			id := r.Name + camel(name)
			if !strings.HasSuffix(id, "Policy") {
				id += "Policy"
			}
			mp := t.AddResource(id, "AWS::IAM::ManagedPolicy", map[string]any{
				"Description":    cft.Sub("${AWS::StackName} " + r.Name + ": " + name),
				"PolicyDocument": p["PolicyDocument"],
			})
			mp.Condition = cond
			ref := any(cft.Ref(id))
			if cond != r.Condition {
				ref = cft.If(cond, ref, cft.NoValue())
			}
			arns = append(arns, ref)
		}
		r.Properties["ManagedPolicyArns"] = arns
		if len(keep) > 0 {
			r.Properties["Policies"] = keep
		} else {
			delete(r.Properties, "Policies")
		}
	}
}

func isNoValue(v any) bool {
	name, ok := cft.RefName(v)
	return ok && name == cft.NoValueName
}

// camel turns a policy name such as bastion-banner-policy into BastionBannerPolicy.
func camel(s string) string {
	var b strings.Builder
	up := true
	for _, c := range s {
		switch {
		case unicode.IsLetter(c) || unicode.IsDigit(c):
			if up {
				c = unicode.ToUpper(c)
			}
			b.WriteRune(c)
			up = false
		default:
			up = true
		}
	}
	return b.String()
}
