package policy

import (
	"fmt"
	"strings"

	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/cft"
)

// Helpers of the RDS rules: clusters and their instances, settings inherited from the cluster,
// event subscription rules, per-stage descriptions.

var clusterTypes = []string{dbCluster}

// instancesOf returns the DB instances that belong to a cluster.
func (c *Context) instancesOf(cluster *cft.Resource) []*cft.Resource {
	var out []*cft.Resource
	for _, i := range c.OfType(dbInstance) {
		if id, ok := Prop(i, "DBClusterIdentifier"); ok && Mentions(id, cluster.Name) {
			out = append(out, i)
		}
	}
	return out
}

// clusterOf returns the cluster an instance belongs to (nil: standalone or not in this template).
func (c *Context) clusterOf(inst *cft.Resource) *cft.Resource {
	id, ok := Prop(inst, "DBClusterIdentifier")
	if !ok {
		return nil
	}
	for _, cl := range c.OfType(dbCluster) {
		if Mentions(id, cl.Name) {
			return cl
		}
	}
	return nil
}

func standalone(r *cft.Resource) bool {
	_, inCluster := Prop(r, "DBClusterIdentifier")
	return r.Type == dbInstance && !inCluster
}

// clusterOrStandalone runs fn on every cluster and on every instance outside a cluster.
func clusterOrStandalone(fn func(c *Context, r *cft.Resource) []Violation) func(*Context) []Violation {
	return forEach([]string{dbCluster, dbInstance}, func(c *Context, r *cft.Resource) []Violation {
		if r.Type == dbInstance && !standalone(r) {
			return nil
		}
		return fn(c, r)
	})
}

// instanceSetting reads a setting of an instance, falling back to its cluster's property.
func (c *Context) instanceSetting(inst *cft.Resource, instProp, clusterProp string) any {
	if v, ok := Prop(inst, instProp); ok {
		return v
	}
	if cl := c.clusterOf(inst); cl != nil {
		if v, ok := Prop(cl, clusterProp); ok {
			return v
		}
	}
	return nil
}

// performanceInsightsOff reports whether Performance Insights is known to be off (unset or
// false); a value that cannot be judged is RDS-009's finding, and the settings that go with
// Performance Insights are still checked.
func (c *Context) performanceInsightsOff(inst *cft.Resource) bool {
	v := c.instanceSetting(inst, "EnablePerformanceInsights", "PerformanceInsightsEnabled")
	b, ok, _ := Bool(v)
	return v == nil || ok && !b
}

// worldCIDR reports whether a CIDR admits every address.
func worldCIDR(v any) bool {
	s, _ := v.(string)
	return s == "0.0.0.0/0" || s == "::/0"
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// dynamicRef reports whether a value holds a Secrets Manager or SSM SecureString dynamic
// reference.
func dynamicRef(v any) bool {
	switch x := v.(type) {
	case string:
		return strings.Contains(x, "{{resolve:secretsmanager:") || strings.Contains(x, "{{resolve:ssm-secure:")
	case map[string]any:
		for _, e := range x {
			if dynamicRef(e) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if dynamicRef(e) {
				return true
			}
		}
	}
	return false
}

// eventRule requires an enabled RDS event subscription with the best-practice categories of one
// source type, in templates that hold a cluster.
func eventRule(id, source, sourceType string) *Rule {
	cats := bestpractice.EventCategories[sourceType]
	return &Rule{
		ID: id, Severity: Error, Title: "RDS events of " + sourceType + " are subscribed to",
		Rationale: "failovers, failures and configuration changes must reach the people on call, not only the console",
		Fix:       fmt.Sprintf("add an AWS::RDS::EventSubscription with SourceType %s and EventCategories %s to the notification topic", sourceType, strings.Join(cats, ", ")),
		Source:    source,
		Types:     []string{dbCluster, "AWS::RDS::EventSubscription"},
		check: forEach(clusterTypes, func(c *Context, r *cft.Resource) []Violation {
			var missing []string
			best := ""
			for _, sub := range c.OfType("AWS::RDS::EventSubscription") {
				st, _ := Prop(sub, "SourceType")
				if s, _ := st.(string); s != sourceType {
					continue
				}
				if en, ok := Prop(sub, "Enabled"); ok {
					if b, lit, _ := Bool(en); !lit || !b {
						continue
					}
				}
				got, set := Prop(sub, "EventCategories")
				if !set {
					return nil // every category
				}
				have := map[string]bool{}
				for _, s := range Strings(got) {
					have[s] = true
				}
				var miss []string
				for _, want := range cats {
					if !have[want] {
						miss = append(miss, want)
					}
				}
				if len(miss) == 0 {
					return nil
				}
				if best == "" || len(miss) < len(missing) {
					best, missing = sub.Name, miss
				}
			}
			if best != "" {
				return one(c.Resource(best), "Properties.EventCategories", "%s events not subscribed to: %s", sourceType, strings.Join(missing, ", "))
			}
			return one(r, "", "no enabled event subscription for %s events (%s)", sourceType, strings.Join(cats, ", "))
		}),
	}
}

// stagesWhere names the stages for which a setting holds, for the docs.
func stagesWhere(pred func(bestpractice.StageSettings) bool) string {
	var out []string
	for _, s := range bestpractice.StageNames {
		if pred(bestpractice.Stage(s)) {
			out = append(out, s)
		}
	}
	return strings.Join(out, ", ")
}

// stageValues lists a setting per stage, for the docs: "dev 7, test 7, pre-prod 7, prod 35".
func stageValues(val func(bestpractice.StageSettings) string) string {
	var out []string
	for _, s := range bestpractice.StageNames {
		out = append(out, s+" "+val(bestpractice.Stage(s)))
	}
	return strings.Join(out, ", ")
}
