package policy

import (
	"slices"
	"sort"
	"strings"

	"github.com/apgstack/apgstack/cft"
)

// SNS rules: encrypted topics and who may publish to them.

// publisher is a service that publishes to a topic, through which resource, and how a key
// policy statement names it.
type publisher struct {
	name, via string
	admits    func(principal any) bool
}

func servicePrincipal(svc string) func(any) bool {
	return func(p any) bool {
		if slices.Contains(servicePrincipals(p), svc) {
			return true
		}
		return false
	}
}

// autoScalingRole matches the Auto Scaling service-linked role, which publishes group
// notifications (a service principal cannot stand in for it).
func autoScalingRole(p any) bool {
	m, ok := p.(map[string]any)
	return ok && containsString(m["AWS"], "aws-service-role/autoscaling.amazonaws.com/")
}

// publishers returns the AWS services that publish to a topic, in a stable order.
func (c *Context) publishers(topic string) []publisher {
	var out []publisher
	seen := map[string]bool{}
	add := func(name, via string, admits func(any) bool) {
		if !seen[name] {
			seen[name] = true
			out = append(out, publisher{name, via, admits})
		}
	}
	for _, a := range c.OfType(alarm) {
		for _, p := range []string{"AlarmActions", "OKActions", "InsufficientDataActions"} {
			if v, ok := Prop(a, p); ok && Mentions(v, topic) {
				add("cloudwatch.amazonaws.com", a.Name, servicePrincipal("cloudwatch.amazonaws.com"))
			}
		}
	}
	for _, e := range c.OfType(eventSub) {
		if v, ok := Prop(e, "SnsTopicArn"); ok && Mentions(v, topic) {
			add("events.rds.amazonaws.com", e.Name, servicePrincipal("events.rds.amazonaws.com"))
		}
	}
	for _, g := range c.OfType(autoScalingGroup) {
		if v, ok := Prop(g, "NotificationConfigurations"); ok && Mentions(v, topic) {
			add("the Auto Scaling service-linked role", g.Name, autoScalingRole)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func publisherNames(ps []publisher) string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.name
	}
	return strings.Join(names, " and ")
}

var snsRules = []*Rule{
	{
		ID: "SNS-001", Severity: Error, Title: "SNS topics are encrypted",
		Rationale: "alarm and event messages name hosts, databases and failures; they should be encrypted at rest",
		Fix:       "set KmsMasterKeyId to a customer-managed key whose policy lets the publishers use it",
		Source:    "Security Hub SNS.1",
		Types:     []string{snsTopic},
		check: forEach([]string{snsTopic}, func(c *Context, r *cft.Resource) []Violation {
			if _, ok := Prop(r, "KmsMasterKeyId"); !ok {
				return one(r, "Properties.KmsMasterKeyId", "the topic is not encrypted")
			}
			return nil
		}),
	},
	{
		ID: "SNS-002", Severity: Error, Title: "The services that publish to an encrypted topic can use its key",
		Rationale: "CloudWatch alarms and RDS events cannot publish to a topic whose key they may not use: the notifications are silently lost",
		Fix:       "encrypt the topic with a customer-managed key whose policy allows kms:GenerateDataKey* and kms:Decrypt to cloudwatch.amazonaws.com, events.rds.amazonaws.com and, for group notifications, the Auto Scaling service-linked role",
		Source:    "SNS Developer Guide: Enable compatibility between event sources from AWS services and encrypted topics",
		Types:     []string{snsTopic, kmsKey, alarm, eventSub, autoScalingGroup},
		check: forEach([]string{snsTopic}, func(c *Context, r *cft.Resource) []Violation {
			keyRef, ok := Prop(r, "KmsMasterKeyId")
			if !ok {
				return nil // SNS-001
			}
			pubs := c.publishers(r.Name)
			if len(pubs) == 0 {
				return nil
			}
			if s, _ := keyRef.(string); strings.Contains(s, "alias/aws/") {
				return one(r, "Properties.KmsMasterKeyId", "the AWS managed key %s cannot grant %s, so they cannot publish", s, publisherNames(pubs))
			}
			key := c.keyResource(keyRef)
			if key == nil {
				return one(r, "Properties.KmsMasterKeyId", "the topic's key is not declared in this template, so its policy cannot be shown to admit %s", publisherNames(pubs))
			}
			doc, _ := Prop(key, "KeyPolicy")
			var out []Violation
			for _, pub := range pubs {
				gen, dec := false, false
				for _, s := range statements(doc, "Properties.KeyPolicy") {
					if pub.admits(s.principal) {
						gen = gen || s.grants("kms:GenerateDataKey")
						dec = dec || s.grants("kms:Decrypt")
					}
				}
				if !gen || !dec {
					out = append(out, one(key, "Properties.KeyPolicy", "%s publishes to %s (through %s) but the key policy does not allow it kms:GenerateDataKey* and kms:Decrypt", pub.name, r.Name, pub.via)...)
				}
			}
			return out
		}),
	},
	{
		ID: "SNS-003", Severity: Error, Title: "Topic policies name their principals",
		Rationale: "a topic policy with Principal * lets anyone publish false alarms or subscribe to real ones",
		Fix:       "name the service principals or accounts that publish instead of *",
		Source:    "Security Hub SNS.4",
		Types:     []string{topicPol},
		check: forEach([]string{topicPol}, func(c *Context, r *cft.Resource) []Violation {
			return noWildcardPrincipal(r, "Properties.PolicyDocument", "topic policy")
		}),
	},
}
