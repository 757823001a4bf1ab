package policy

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/cft"
)

// Rules for what Aurora offers today beyond the seed's checks: CloudWatch Database Insights
// and the settings it reads from every instance.

// instanceInsightsSettings are the instance properties Database Insights reads; every instance
// of a cluster must agree on them, so that what is seen does not change with a failover.
var instanceInsightsSettings = []string{"EnablePerformanceInsights", "PerformanceInsightsRetentionPeriod", "PerformanceInsightsKMSKeyId", "MonitoringInterval"}

const (
	backupPlan      = "AWS::Backup::BackupPlan"
	backupSelection = "AWS::Backup::BackupSelection"
	backupVault     = "AWS::Backup::BackupVault"
)

var auroraRules = []*Rule{
	{
		ID: "RDS-025", Severity: Error, Title: "Database Insights runs in the stage's mode",
		Rationale: "Performance Insights' console is gone; CloudWatch Database Insights is where load, waits and plans are seen, and prod needs the advanced mode's execution plans and lock analysis",
		Fix:       fmt.Sprintf("set DatabaseInsightsMode on the cluster (advanced for prod) with PerformanceInsightsEnabled: true and, for advanced, PerformanceInsightsRetentionPeriod: %d", bestpractice.InsightsAdvancedRetentionDays),
		Source:    "Aurora User Guide: Monitoring Amazon Aurora with CloudWatch Database Insights; README.md#per-stage (the per-stage table)",
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
	{
		ID: "RDS-027", Severity: Error, Title: "Only dev and test clusters pause",
		Rationale: "a Serverless v2 cluster with a minimum of 0 ACUs pauses when idle and takes seconds to answer the first connection, which pre-prod and prod users would see as an outage",
		Fix:       "set ServerlessV2ScalingConfiguration.MinCapacity to at least 0.5 outside dev and test",
		Source:    "Aurora User Guide: Scaling to Zero ACUs with automatic pause and resume for Aurora Serverless v2",
		Types:     []string{dbCluster},
		Stages:    "pre-prod, prod (dev and test may pause)",
		check: forEach(clusterTypes, func(c *Context, r *cft.Resource) []Violation {
			if bestpractice.AutoPauseAllowed(c.Stage) {
				return nil
			}
			v, set := Prop(r, "ServerlessV2ScalingConfiguration.MinCapacity")
			if !set {
				return nil
			}
			if f, err := strconv.ParseFloat(fmt.Sprint(v), 64); err == nil && f == 0 {
				return one(r, "Properties.ServerlessV2ScalingConfiguration.MinCapacity", "a minimum of 0 ACUs pauses the cluster when idle")
			}
			return nil
		}),
	},
	{
		ID: "RDS-028", Severity: Error, Title: "prod's cluster is in an AWS Backup plan with an encrypted vault",
		Rationale: "HIPAA and NIST 800-53 checks (AWS Config rds-in-backup-plan) expect RDS in a backup plan: central retention, copies to another Region and audit of every recovery point",
		Fix:       "add an AWS::Backup::BackupVault with EncryptionKeyArn set to a customer-managed key, a BackupPlan whose rule targets it, and a BackupSelection naming the cluster's ARN",
		Source:    "AWS Config managed rule rds-in-backup-plan (HIPAA, NIST 800-53 conformance packs); AWS Backup Developer Guide",
		Types:     []string{dbCluster, backupPlan, backupSelection, backupVault},
		Stages:    stagesWhere(func(s bestpractice.StageSettings) bool { return s.AWSBackup }),
		check: forEach(clusterTypes, func(c *Context, r *cft.Resource) []Violation {
			if !c.StageSettings().AWSBackup {
				return nil
			}
			for _, sel := range c.OfType(backupSelection) {
				res, _ := Prop(sel, "BackupSelection.Resources")
				if !Mentions(res, r.Name) && !mentionsAny(List(res), r.Name) {
					continue
				}
				planRef, _ := Prop(sel, "BackupPlanId")
				plan := c.Target(planRef)
				if plan == nil || plan.Type != backupPlan {
					return one(sel, "Properties.BackupPlanId", "the selection's plan is not declared in this template")
				}
				rules, _ := Prop(plan, "BackupPlan.BackupPlanRule")
				for _, rule := range List(rules) {
					m, _ := rule.(map[string]any)
					vault := c.Target(m["TargetBackupVault"])
					if vault == nil || vault.Type != backupVault {
						return one(plan, "Properties.BackupPlan.BackupPlanRule", "the rule's vault is not declared in this template")
					}
					key, _ := Prop(vault, "EncryptionKeyArn")
					if ok, why := c.customerKey(key); !ok {
						return one(vault, "Properties.EncryptionKeyArn", "vault key: %s", why)
					}
				}
				return nil
			}
			return one(r, "", "no AWS::Backup::BackupSelection names this cluster")
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

func mentionsAny(list []any, name string) bool {
	for _, v := range list {
		if Mentions(v, name) {
			return true
		}
	}
	return false
}
