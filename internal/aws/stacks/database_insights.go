package stacks

import (
	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/cft"
)

// CloudWatch Database Insights: the mode is set on the cluster, with the cluster-level
// Performance Insights settings that the mode requires (advanced needs 465 days of retention);
// every instance keeps the same Performance Insights and enhanced monitoring settings (from the
// same per-stage mapping entries), so that no instance differs from the cluster after a
// failover or a replacement.

const stageInsightsMode = "DatabaseInsightsMode"

func addDatabaseInsights(t *cft.Template) {
	m := t.Mapping(dbStageMap)
	for _, name := range bestpractice.StageNames {
		m.Values[name][stageInsightsMode] = bestpractice.Stage(name).DatabaseInsightsMode
	}
	c := t.Resource(dbCluster).Properties
	c["DatabaseInsightsMode"] = stage(stageInsightsMode)
	c["PerformanceInsightsEnabled"] = true
	c["PerformanceInsightsKmsKeyId"] = cft.GetAtt(dbKey, "Arn")
	c["PerformanceInsightsRetentionPeriod"] = stage(stagePIRetention)
}
