package policy

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/apgstack/apgstack/cft"
)

// IAM rules: no broad managed policies, scoped statements.

// broadManagedPolicies are AWS managed policies wider than any job in these stacks.
var broadManagedPolicies = regexp.MustCompile(`(?i)policy/(.*FullAccess.*|AdministratorAccess|PowerUserAccess|ReadOnlyAccess|SecretsManagerReadWrite|AWSKeyManagementServicePowerUser|IAMFullAccess|AmazonSSMAutomationRole|AWSCloudFormationFullAccess)$`)

var iamRules = []*Rule{
	{
		ID: "IAM-001", Severity: Error, Title: "No policy allows every action on every resource",
		Rationale: `"Action": "*" on "Resource": "*" is administrator access for whoever assumes the role`,
		Fix:       "list the actions the job needs and the resources it touches",
		Source:    "Security Hub IAM.1",
		Types:     iamTypes,
		check: func(c *Context) []Violation {
			var out []Violation
			for _, s := range c.identityStatements() {
				if !s.allow || !s.allResources() {
					continue
				}
				for _, a := range s.actions {
					if a == "*" && !s.notAction || s.notAction {
						out = append(out, Violation{s.res.Name, s.path, "allows every action on every resource"})
						break
					}
				}
			}
			return out
		},
	},
	{
		ID: "IAM-002", Severity: Error, Title: "Policies name their actions",
		Rationale: "a service-wide wildcard (s3:*, kms:*) grants actions nobody reviewed, including ones added later",
		Fix:       "replace service:* (and NotAction) with the actions the job calls",
		Source:    "Security Hub IAM.21",
		Types:     iamTypes,
		check: func(c *Context) []Violation {
			var out []Violation
			for _, s := range c.identityStatements() {
				if !s.allow {
					continue
				}
				if s.notAction {
					out = append(out, Violation{s.res.Name, s.path + ".NotAction", "Allow with NotAction grants every other action"})
					continue
				}
				for _, a := range s.actions {
					if a != "*" && strings.HasSuffix(a, ":*") {
						out = append(out, Violation{s.res.Name, s.path + ".Action", fmt.Sprintf("%s grants every action of the service", a)})
					}
				}
			}
			return out
		},
	},
	{
		ID: "IAM-003", Severity: Error, Title: "No AWS managed policy wider than the job",
		Rationale: "FullAccess, PowerUser and administrator policies grant far more than a database, bastion or Lambda role needs",
		Fix:       "attach a narrow managed policy (AmazonSSMManagedInstanceCore, AWSLambdaVPCAccessExecutionRole, AmazonRDSEnhancedMonitoringRole) or an inline policy naming actions and resources",
		Source:    "IAM User Guide: Security best practices (apply least-privilege permissions); Security Hub IAM.1",
		Types:     []string{iamRole, "AWS::IAM::User", "AWS::IAM::Group"},
		check: forEach([]string{iamRole, "AWS::IAM::User", "AWS::IAM::Group"}, func(c *Context, r *cft.Resource) []Violation {
			arns, _ := Prop(r, "ManagedPolicyArns")
			var out []Violation
			for i, a := range List(arns) {
				s := fmt.Sprint(a)
				if fn, arg, ok := cft.Intrinsic(a); ok && fn == "Fn::Sub" {
					s = fmt.Sprint(arg)
				}
				if broadManagedPolicies.MatchString(s) {
					name := s[strings.LastIndex(s, "/")+1:]
					out = append(out, one(r, fmt.Sprintf("Properties.ManagedPolicyArns[%d]", i), "the AWS managed policy %s is wider than the job", name)...)
				}
			}
			return out
		}),
	},
	{
		ID: "IAM-004", Severity: Error, Title: "Role trust policies name who may assume the role",
		Rationale: "a trust policy with Principal * lets any AWS account assume the role",
		Fix:       "name the service principal or account that assumes the role",
		Source:    "IAM User Guide: Security best practices (verify public and cross-account access)",
		Types:     []string{iamRole},
		check: forEach([]string{iamRole}, func(c *Context, r *cft.Resource) []Violation {
			return noWildcardPrincipal(r, "Properties.AssumeRolePolicyDocument", "trust policy")
		}),
	},
	{
		ID: "IAM-005", Severity: Error, Title: "iam:PassRole names the roles",
		Rationale: "iam:PassRole on * lets the holder hand any role, including administrator roles, to a service it controls",
		Fix:       "set the Resource of iam:PassRole to the ARNs of the roles passed",
		Source:    "IAM User Guide: Granting a user permissions to pass a role to an AWS service",
		Types:     iamTypes,
		check: func(c *Context) []Violation {
			var out []Violation
			for _, s := range c.identityStatements() {
				if s.allResources() && s.grants("iam:PassRole") {
					out = append(out, Violation{s.res.Name, s.path, "iam:PassRole is allowed on every role"})
				}
			}
			return out
		},
	},
	{
		ID: "IAM-006", Severity: Warning, Title: "Users get permissions from groups or roles, not their own policies",
		Rationale: "policies attached to users are hard to review and outlive the people",
		Fix:       "attach the policy to a group or role instead",
		Source:    "Security Hub IAM.2",
		Types:     []string{"AWS::IAM::User"},
		check: forEach([]string{"AWS::IAM::User"}, func(c *Context, r *cft.Resource) []Violation {
			_, p := Prop(r, "Policies")
			_, m := Prop(r, "ManagedPolicyArns")
			if p || m {
				return one(r, "Properties", "policies are attached to the user")
			}
			return nil
		}),
	},
}
