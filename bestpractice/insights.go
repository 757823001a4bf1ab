package bestpractice

// CloudWatch Database Insights, which took over Performance Insights' console in 2026: Standard
// mode keeps Performance Insights' flexible retention (7 days free); Advanced mode adds execution
// plans, lock analysis and fleet views, and requires 465 days of Performance Insights retention.
// Both read the cluster's setting; every instance carries the same Performance Insights and
// enhanced monitoring settings, so that a failover changes nothing in what is seen.
const (
	InsightsStandard              = "standard"
	InsightsAdvanced              = "advanced"
	InsightsAdvancedRetentionDays = 465
)

// InsightsModes are the values of DatabaseInsightsMode.
var InsightsModes = []string{InsightsStandard, InsightsAdvanced}
