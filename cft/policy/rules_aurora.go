package policy

import (
	"fmt"
	"strings"

	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/cft"
)

// Rules for what Aurora offers today beyond the seed's checks: CloudWatch Database Insights
// and the settings it reads from every instance.

// instanceInsightsSettings are the instance properties Database Insights reads; every instance
// of a cluster must agree on them, so that what is seen does not change with a failover.
var instanceInsightsSettings = []string{"EnablePerformanceInsights", "PerformanceInsightsRetentionPeriod", "PerformanceInsightsKMSKeyId", "MonitoringInterval"}

var auroraRules = []*Rule{
	{
		ID: "RDS-025", Severity: Error, Title: "Database Insights runs in the stage's mode",
		Rationale: "Performance Insights' console is gone; CloudWatch Database Insights is where load, waits and plans are seen, and prod needs the advanced mode's execution plans and lock analysis",
		Fix:       fmt.Sprintf("set DatabaseInsightsMode on the cluster (advanced for prod) with PerformanceInsightsEnabled: true and, for advanced, PerformanceInsightsRetentionPeriod: %d", bestpractice.InsightsAdvancedRetentionDays),
		Source:    "Aurora User Guide: Monitoring Amazon Aurora with CloudWatch Database Insights; DESIGN.md per-stage table",
		Types:     []string{dbCluster},
		Stages:    "every stage: " + stageValues(func(s bestpractice.StageSettings) string { return s.DatabaseInsightsMode }),
		check: forEach(clusterTypes, func(c *Context, r *cft.Resource) []Violation {
			want := c.StageSettings().DatabaseInsightsMode
			mode := bestpractice.InsightsStandard
			if v, set := Prop(r, "DatabaseInsightsMode"); set {
				s, ok, why := Str(v)
				if !ok {
					return one(r, "Properties.DatabaseInsightsMode", "DatabaseInsightsMode: %s", why)
				}
				mode = s
			}
			if want == bestpractice.InsightsAdvanced && mode != want {
				return one(r, "Properties.DatabaseInsightsMode", "Database Insights is %s; the stage wants advanced", mode)
			}
			if mode != bestpractice.InsightsAdvanced {
				return nil
			}
			if v, _ := Prop(r, "PerformanceInsightsEnabled"); v == nil {
				return one(r, "Properties.PerformanceInsightsEnabled", "advanced Database Insights needs PerformanceInsightsEnabled: true on the cluster")
			} else if b, ok, why := Bool(v); !ok || !b {
				return one(r, "Properties.PerformanceInsightsEnabled", "advanced Database Insights needs Performance Insights on (%s)", orDefault(why, "it is off"))
			}
			v, _ := Prop(r, "PerformanceInsightsRetentionPeriod")
			n, ok, why := Int(v)
			if v == nil {
				n, ok = 7, true
			}
			if !ok {
				return one(r, "Properties.PerformanceInsightsRetentionPeriod", "PerformanceInsightsRetentionPeriod: %s", why)
			}
			if n < bestpractice.InsightsAdvancedRetentionDays {
				return one(r, "Properties.PerformanceInsightsRetentionPeriod", "advanced Database Insights needs %d days of Performance Insights retention, not %d", bestpractice.InsightsAdvancedRetentionDays, n)
			}
			return nil
		}),
	},
	{
		ID: "RDS-026", Severity: Error, Title: "Every instance has the cluster's Performance Insights and monitoring settings",
		Rationale: "Database Insights reads every instance; an instance that differs loses its history or its OS metrics when it becomes the writer",
		Fix:       "give every instance of the cluster the same " + strings.Join(instanceInsightsSettings, ", ") + " (and the cluster's PerformanceInsightsRetentionPeriod when the cluster sets one)",
		Source:    "Aurora User Guide: Turning on Database Insights (cluster-level settings apply to every instance)",
		Types:     []string{dbCluster, dbInstance},
		check: forEach(clusterTypes, func(c *Context, r *cft.Resource) []Violation {
			insts := c.instancesOf(r)
			if len(insts) == 0 {
				return nil
			}
			var out []Violation
			for _, prop := range instanceInsightsSettings {
				first, _ := Prop(insts[0], prop)
				for _, in := range insts[1:] {
					if v, _ := Prop(in, prop); fmt.Sprint(v) != fmt.Sprint(first) {
						out = append(out, one(in, "Properties."+prop, "%s is %s here and %s on %s", prop, shown(v), shown(first), insts[0].Name)...)
					}
				}
			}
			if cv, set := Prop(r, "PerformanceInsightsRetentionPeriod"); set {
				for _, in := range insts {
					if v, ok := Prop(in, "PerformanceInsightsRetentionPeriod"); ok && fmt.Sprint(v) != fmt.Sprint(cv) {
						out = append(out, one(in, "Properties.PerformanceInsightsRetentionPeriod", "retention %s differs from the cluster's %s", shown(v), shown(cv))...)
					}
				}
			}
			return out
		}),
	},
}

// shown is a value for a message; an unset property says so.
func shown(v any) string {
	if v == nil {
		return "unset"
	}
	return short(v)
}
