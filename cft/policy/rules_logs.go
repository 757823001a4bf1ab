package policy

import (
	"strings"

	"github.com/apgstack/apgstack/cft"
)

// CloudWatch Logs rules: retention and encryption of sensitive log groups.

// sensitiveLogGroup reports why a log group holds database or shell logs ("" if it does not):
// its name is an RDS log group's, or an instance's launch data names it (by reference, or by
// name in user data or cfn-init files).
func (c *Context) sensitiveLogGroup(r *cft.Resource) string {
	var names []string
	if v, ok := Prop(r, "LogGroupName"); ok {
		if s, isStr := v.(string); isStr {
			names = append(names, s)
		}
	}
	if orig := c.Template.Resource(r.Name); orig != nil {
		if fn, arg, ok := cft.Intrinsic(orig.Properties["LogGroupName"]); ok && fn == "Fn::Sub" {
			switch a := arg.(type) {
			case string:
				names = append(names, a)
			case []any:
				if s, isStr := a[0].(string); isStr && len(a) == 2 {
					names = append(names, s)
				}
			}
		}
	}
	for _, n := range names {
		if strings.Contains(n, "/aws/rds/") {
			return "it receives database logs"
		}
	}
	for _, h := range c.OfType(launchTemplate, launchConfiguration, "AWS::EC2::Instance", autoScalingGroup) {
		if Mentions(h.Properties, r.Name) || Mentions(h.Metadata, r.Name) {
			return "it receives shell and SSH logs from " + h.Name
		}
		for _, n := range names {
			if n != "" && (containsString(h.Properties, n) || containsString(h.Metadata, n)) {
				return "it receives shell and SSH logs from " + h.Name
			}
		}
	}
	return ""
}

// containsString reports whether any string inside v contains s.
func containsString(v any, s string) bool {
	switch x := v.(type) {
	case string:
		return strings.Contains(x, s)
	case map[string]any:
		for _, e := range x {
			if containsString(e, s) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if containsString(e, s) {
				return true
			}
		}
	}
	return false
}

var logsRules = []*Rule{
	{
		ID: "LOGS-001", Severity: Error, Title: "Log groups have a retention",
		Rationale: "a log group without retention keeps (and bills) everything forever, and nobody decided how long logs are kept",
		Fix:       "set RetentionInDays (a parameter such as LogsRetentionInDays)",
		Source:    "Security Hub CloudWatch.16",
		Types:     []string{logGroup},
		check: forEach([]string{logGroup}, func(c *Context, r *cft.Resource) []Violation {
			v, set := Prop(r, "RetentionInDays")
			if !set {
				return one(r, "Properties.RetentionInDays", "no retention: logs are kept forever")
			}
			if _, ok, why := Int(v); !ok {
				return one(r, "Properties.RetentionInDays", "RetentionInDays: %s", why)
			}
			return nil
		}),
	},
	{
		ID: "LOGS-002", Severity: Error, Title: "Database and shell logs are encrypted with a customer-managed key",
		Rationale: "database and shell logs hold statements, user names and commands; the key policy should decide who reads them",
		Fix:       "set KmsKeyId to a customer-managed key whose policy allows logs.<region>.amazonaws.com",
		Source:    "CloudWatch Logs User Guide: Encrypt log data in CloudWatch Logs using AWS KMS",
		Types:     []string{logGroup},
		check: forEach([]string{logGroup}, func(c *Context, r *cft.Resource) []Violation {
			why := c.sensitiveLogGroup(r)
			if why == "" {
				return nil
			}
			v, _ := Prop(r, "KmsKeyId")
			if ok, keyWhy := c.customerKey(v); !ok {
				return one(r, "Properties.KmsKeyId", "%s, but %s", why, keyWhy)
			}
			return nil
		}),
	},
	{
		ID: "CW-001", Severity: Error, Title: "Alarms notify someone",
		Rationale: "an alarm without an action changes colour in a console nobody watches",
		Fix:       "set AlarmActions to the notification topic",
		Source:    "Security Hub CloudWatch.15",
		Types:     []string{alarm},
		check: forEach([]string{alarm}, func(c *Context, r *cft.Resource) []Violation {
			v, _ := Prop(r, "AlarmActions")
			if len(List(v)) == 0 {
				return one(r, "Properties.AlarmActions", "the alarm has no action")
			}
			return nil
		}),
	},
	{
		ID: "CW-002", Severity: Error, Title: "Alarm actions are enabled",
		Rationale: "an alarm with ActionsEnabled: false never notifies",
		Fix:       "remove ActionsEnabled or set it to true",
		Source:    "Security Hub CloudWatch.17",
		Types:     []string{alarm},
		check: forEach([]string{alarm}, func(c *Context, r *cft.Resource) []Violation {
			v, set := Prop(r, "ActionsEnabled")
			if !set {
				return nil
			}
			b, ok, why := Bool(v)
			if !ok {
				return one(r, "Properties.ActionsEnabled", "ActionsEnabled: %s", why)
			}
			if !b {
				return one(r, "Properties.ActionsEnabled", "the alarm's actions are disabled")
			}
			return nil
		}),
	},
}
