package policy

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/cft"
)

// Secrets Manager rules: encryption, rotation, resource policies.

var rateDays = regexp.MustCompile(`^rate\((\d+) (day|days|hour|hours)\)$`)

var secretsRules = []*Rule{
	{
		ID: "SM-001", Severity: Error, Title: "Secrets rotate automatically",
		Rationale: "a password that never changes stays valid for everyone who ever saw it",
		Fix:       "add an AWS::SecretsManager::RotationSchedule for the secret (the hosted rotation function of the AWS::SecretsManager-2024-09-16 transform for RDS)",
		Source:    "Security Hub SecretsManager.1",
		Types:     []string{secret, rotation},
		check: forEach([]string{secret}, func(c *Context, r *cft.Resource) []Violation {
			for _, rs := range c.OfType(rotation) {
				if id, _ := Prop(rs, "SecretId"); Mentions(id, r.Name) {
					return nil
				}
			}
			return one(r, "", "no rotation schedule rotates this secret")
		}),
	},
	{
		ID: "SM-002", Severity: Error, Title: fmt.Sprintf("Secrets rotate at least every %d days", bestpractice.RotationDays),
		Rationale: "the rotation period bounds how long a leaked password stays usable",
		Fix:       fmt.Sprintf("set RotationRules.AutomaticallyAfterDays (or ScheduleExpression rate(N days)) to %d or less", bestpractice.RotationDays),
		Source:    "Security Hub SecretsManager.4; bestpractice/bestpractice.go (RotationDays)",
		Types:     []string{rotation},
		check: forEach([]string{rotation}, func(c *Context, r *cft.Resource) []Violation {
			want := bestpractice.RotationDays
			if v, ok := Prop(r, "RotationRules.AutomaticallyAfterDays"); ok {
				n, lit, why := Int(v)
				if !lit {
					return one(r, "Properties.RotationRules.AutomaticallyAfterDays", "AutomaticallyAfterDays: %s", why)
				}
				if n > want {
					return one(r, "Properties.RotationRules.AutomaticallyAfterDays", "rotation every %d days exceeds %d", n, want)
				}
				return nil
			}
			v, ok := Prop(r, "RotationRules.ScheduleExpression")
			if !ok {
				return one(r, "Properties.RotationRules", "no rotation period is set")
			}
			s, lit, why := Str(v)
			if !lit {
				return one(r, "Properties.RotationRules.ScheduleExpression", "ScheduleExpression: %s", why)
			}
			if m := rateDays.FindStringSubmatch(strings.TrimSpace(s)); m != nil {
				n, _ := strconv.Atoi(m[1])
				if strings.HasPrefix(m[2], "hour") || n <= want {
					return nil
				}
				return one(r, "Properties.RotationRules.ScheduleExpression", "rotation every %d days exceeds %d", n, want)
			}
			if f := strings.Fields(strings.TrimSuffix(strings.TrimPrefix(s, "cron("), ")")); strings.HasPrefix(s, "cron(") && len(f) == 6 && (f[2] == "*" || f[2] == "?") {
				return nil // runs at least weekly
			}
			return one(r, "Properties.RotationRules.ScheduleExpression", "%q cannot be shown to rotate every %d days or more often", s, want)
		}),
	},
	{
		ID: "SM-003", Severity: Warning, Title: "Secrets are encrypted with a customer-managed key",
		Rationale: "a customer-managed key lets the key policy, not only IAM, decide who can read the secret, and logs each use",
		Fix:       "set KmsKeyId to the stack's customer-managed key",
		Source:    "Secrets Manager User Guide: Secret encryption and decryption",
		Types:     []string{secret},
		check: forEach([]string{secret}, func(c *Context, r *cft.Resource) []Violation {
			v, _ := Prop(r, "KmsKeyId")
			if ok, why := c.customerKey(v); !ok {
				return one(r, "Properties.KmsKeyId", "secret key: %s", why)
			}
			return nil
		}),
	},
	{
		ID: "SM-004", Severity: Error, Title: "Secret resource policies name their principals",
		Rationale: "a secret policy with Principal * can hand the password to any AWS account",
		Fix:       "name the roles that read the secret instead of *, and keep BlockPublicPolicy on",
		Source:    "Secrets Manager User Guide: Resource-based policies (BlockPublicPolicy)",
		Types:     []string{secretPol},
		check: forEach([]string{secretPol}, func(c *Context, r *cft.Resource) []Violation {
			out := noWildcardPrincipal(r, "Properties.ResourcePolicy", "secret policy")
			if v, ok := Prop(r, "BlockPublicPolicy"); ok {
				if b, lit, _ := Bool(v); lit && !b {
					out = append(out, one(r, "Properties.BlockPublicPolicy", "BlockPublicPolicy is off")...)
				}
			}
			return out
		}),
	},
	{
		ID: "SM-005", Severity: Error, Title: "Secret values are generated, not written in the template",
		Rationale: "a secret value in the template is in every copy of the file and in the stack's history",
		Fix:       "use GenerateSecretString (with SecretStringTemplate for the non-secret fields)",
		Source:    "CloudFormation User Guide: Do not embed credentials in your templates",
		Types:     []string{secret},
		check: forEach([]string{secret}, func(c *Context, r *cft.Resource) []Violation {
			if v, ok := Prop(r, "SecretString"); ok && !dynamicRef(v) {
				return one(r, "Properties.SecretString", "the secret's value is written in the template")
			}
			return nil
		}),
	},
}
