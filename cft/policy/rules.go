package policy

import (
	"fmt"
	"strings"

	"github.com/apgstack/apgstack/cft"
)

// SuppressionRule is the rule a malformed suppression or one without a reason violates.
const SuppressionRule = "APG-001"

// rules is the rule table, in the order the docs list it.
var rules = concat(metaRules, rdsRules, auroraRules, kmsRules, snsRules, secretsRules, lambdaRules, iamRules, ec2Rules, logsRules, tagRules)

func concat(groups ...[]*Rule) []*Rule {
	var out []*Rule
	seen := map[string]bool{}
	for _, g := range groups {
		for _, r := range g {
			if seen[r.ID] {
				panic("policy: rule id used twice: " + r.ID)
			}
			seen[r.ID] = true
			out = append(out, r)
		}
	}
	return out
}

// Rules returns every rule, in table order.
func Rules() []Rule {
	out := make([]Rule, len(rules))
	for i, r := range rules {
		out[i] = *r
	}
	return out
}

// Lookup returns a rule by id, or nil.
func Lookup(id string) *Rule {
	for _, r := range rules {
		if r.ID == id {
			return r
		}
	}
	return nil
}

var metaRules = []*Rule{{
	ID: SuppressionRule, Severity: Error, Title: "Suppressions name a rule and give a reason",
	Rationale: "a finding hidden without a written reason is a finding nobody reviewed",
	Fix:       "give each entry of Metadata.apgstack.suppress a rule id that exists and a reason a reviewer would accept",
	Source:    "apgstack (AWS Well-Architected SEC: document exceptions to security controls)",
	Types:     []string{"any"},
	// Checked while reading suppressions (context.go), not by a check function.
}}

// forEach builds a check that looks at each active resource of the given types.
func forEach(types []string, fn func(c *Context, r *cft.Resource) []Violation) func(*Context) []Violation {
	return func(c *Context) []Violation {
		var out []Violation
		for _, r := range c.OfType(types...) {
			out = append(out, fn(c, r)...)
		}
		return out
	}
}

// one is a single violation, as a slice.
func one(r *cft.Resource, path, format string, args ...any) []Violation {
	return []Violation{{Resource: r.Name, Path: path, Message: fmt.Sprintf(format, args...)}}
}

// wantTrue checks that a property is literally true.
func wantTrue(c *Context, r *cft.Resource, prop, what string) []Violation {
	v, _ := Prop(r, prop)
	b, ok, why := Bool(v)
	path := "Properties." + prop
	switch {
	case !ok && v == nil:
		return one(r, path, "%s is not set (%s is off by default)", prop, what)
	case !ok:
		return one(r, path, "%s: %s", prop, why)
	case !b:
		return one(r, path, "%s is false: %s is off", prop, what)
	}
	return nil
}

// customerKey reports whether v names a customer-managed KMS key, and if not, why.
func (c *Context) customerKey(v any) (bool, string) {
	if v == nil {
		return false, "no key is given, so the AWS managed key is used, whose policy nobody can narrow or audit"
	}
	if r := c.Target(v); r != nil {
		switch r.Type {
		case "AWS::KMS::Key":
			return true, ""
		case "AWS::KMS::Alias":
			target, _ := Prop(r, "TargetKeyId")
			return c.customerKey(target)
		}
		return false, fmt.Sprintf("%s is a %s, not a KMS key", r.Name, r.Type)
	}
	s, ok, why := Str(v)
	if !ok {
		return false, why
	}
	if strings.Contains(s, "alias/aws/") {
		return false, fmt.Sprintf("%s is an AWS managed key, whose policy nobody can narrow or audit", s)
	}
	return true, ""
}

// keyResource returns the KMS key resource of this template a key reference ends at (through an
// alias), or nil.
func (c *Context) keyResource(v any) *cft.Resource {
	r := c.Target(v)
	if r == nil {
		if s, ok := v.(string); ok {
			// alias/name of an alias declared here
			for _, a := range c.OfType("AWS::KMS::Alias") {
				if name, _ := Prop(a, "AliasName"); name == s {
					r = a
				}
			}
		}
	}
	if r == nil {
		return nil
	}
	if r.Type == "AWS::KMS::Alias" {
		t, _ := Prop(r, "TargetKeyId")
		return c.keyResource(t)
	}
	if r.Type == "AWS::KMS::Key" {
		return r
	}
	return nil
}

// Resource types the service rules name.
const (
	kmsKey     = "AWS::KMS::Key"
	snsTopic   = "AWS::SNS::Topic"
	secret     = "AWS::SecretsManager::Secret"
	lambdaFn   = "AWS::Lambda::Function"
	logGroup   = "AWS::Logs::LogGroup"
	alarm      = "AWS::CloudWatch::Alarm"
	rotation   = "AWS::SecretsManager::RotationSchedule"
	eventSub   = "AWS::RDS::EventSubscription"
	iamRole    = "AWS::IAM::Role"
	topicPol   = "AWS::SNS::TopicPolicy"
	secretPol  = "AWS::SecretsManager::ResourcePolicy"
	lambdaPerm = "AWS::Lambda::Permission"
)
