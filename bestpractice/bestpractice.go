// Package bestpractice is the single source of the cluster design's best-practice content: the
// parameter groups, alarms, event categories, per-stage settings, rotation period, extensions and
// mandatory tags. The CloudFormation builders render it into resources and the local engine into
// postgresql.conf, pg_hba.conf, its sampler and alarm evaluator. It does no I/O.
package bestpractice

import (
	"fmt"
	"sort"
	"strings"
)

// Parameter is one entry of a DB parameter group.
type Parameter struct {
	Name  string
	Value string
	// Unit is the unit PostgreSQL reports for the value in pg_settings (ms, s, min, kB, ...),
	// empty for unitless settings; the local twin compares in this unit.
	Unit string
	// Static parameters need a reboot on Aurora (ApplyMethod pending-reboot) and a restart locally.
	Static bool
	// RDSOnly marks an rds.* setting, which has no PostgreSQL GUC: Local says what the local twin
	// does instead.
	RDSOnly bool
	Local   string
	// Why is the reason the entry is there, in one line.
	Why string
}

// Cluster parameter group entries (DBClusterParameterGroup).
var ClusterParameters = []Parameter{
	{Name: "rds.force_ssl", Value: "1", RDSOnly: true,
		Local: "ssl=on and pg_hba.conf admits TCP connections only as hostssl",
		Why:   "refuse unencrypted connections"},
}

// DefaultPgauditLog is pgaudit.log: pgaudit records nothing until it is set.
const DefaultPgauditLog = "ddl,role"

// PreloadLibraries are the libraries in shared_preload_libraries, in the seed's order.
var PreloadLibraries = []string{"auto_explain", "pg_stat_statements", "pg_hint_plan", "pgaudit"}

// InstanceParameters are the DB parameter group entries: the seed's table plus pgaudit.log.
var InstanceParameters = []Parameter{
	{Name: "shared_preload_libraries", Value: strings.Join(PreloadLibraries, ","), Static: true, Why: "load plan logging, statement statistics, hints and auditing"},
	{Name: "log_statement", Value: "ddl", Why: "log every schema change"},
	{Name: "log_connections", Value: "1", Why: "log who connects"},
	{Name: "log_disconnections", Value: "1", Why: "log session ends and their duration"},
	{Name: "log_lock_waits", Value: "1", Why: "log waits longer than deadlock_timeout"},
	{Name: "log_min_duration_statement", Value: "5000", Unit: "ms", Why: "log statements slower than 5 s"},
	{Name: "auto_explain.log_min_duration", Value: "5000", Unit: "ms", Why: "log the plan of statements slower than 5 s"},
	{Name: "auto_explain.log_verbose", Value: "1", Why: "verbose plans"},
	{Name: "log_rotation_age", Value: "1440", Unit: "min", Why: "a log file a day"},
	{Name: "log_rotation_size", Value: "102400", Unit: "kB", Why: "a new log file after 100 MB"},
	{Name: "rds.log_retention_period", Value: "10080", Unit: "min", RDSOnly: true,
		Local: "the supervisor deletes server log files older than 10080 minutes (7 days)",
		Why:   "keep 7 days of logs on the instance"},
	{Name: "random_page_cost", Value: "1", Why: "storage is SSD: random reads cost as much as sequential ones"},
	{Name: "track_activity_query_size", Value: "16384", Unit: "B", Static: true, Why: "keep long queries whole in pg_stat_activity"},
	{Name: "idle_in_transaction_session_timeout", Value: "7200000", Unit: "ms", Why: "end sessions idle in a transaction for 2 hours"},
	{Name: "statement_timeout", Value: "7200000", Unit: "ms", Why: "end statements running for 2 hours"},
	{Name: "search_path", Value: `"$user",public`, Why: "the default search path, stated explicitly"},
	{Name: "pgaudit.log", Value: DefaultPgauditLog, Why: "pgaudit records nothing until its classes are set"},
}

// InstanceParameterGroup returns the instance parameters with pgaudit.log set to the configured
// classes (empty keeps the default).
func InstanceParameterGroup(pgauditLog string) []Parameter {
	out := make([]Parameter, len(InstanceParameters))
	copy(out, InstanceParameters)
	if pgauditLog != "" {
		for i := range out {
			if out[i].Name == "pgaudit.log" {
				out[i].Value = pgauditLog
			}
		}
	}
	return out
}

// Extensions the bootstrap creates, in order.
var Extensions = []string{"pg_stat_statements", "pgaudit"}

// RotationDays is how often the master and application secrets rotate.
const RotationDays = 30

// Alarm is a CloudWatch alarm definition, evaluated on AWS by CloudWatch and locally by the
// supervisor's alarm evaluator.
type Alarm struct {
	Name              string // logical suffix: CPU, MaxUsedTxIDs, FreeLocalStorage
	MetricName        string
	Namespace         string
	Statistic         string // Maximum, Average
	Comparison        string // CloudFormation ComparisonOperator
	Threshold         float64
	Unit              string
	PeriodSeconds     int
	EvaluationPeriods int
	TreatMissingData  string
	Description       string
	// RoleDimension is true when the metric is published per cluster role (WRITER/READER), so the
	// alarm follows a failover; false means the alarm falls back to an instance dimension.
	RoleDimension bool
}

// Roles are the Aurora cluster roles the alarms watch.
var Roles = []string{"WRITER", "READER"}

// Alarms are the database alarms: CPU, transaction ID age, free local storage.
var Alarms = []Alarm{
	{Name: "CPU", MetricName: "CPUUtilization", Namespace: "AWS/RDS", Statistic: "Maximum",
		Comparison: "GreaterThanOrEqualToThreshold", Threshold: 80, Unit: "Percent",
		PeriodSeconds: 60, EvaluationPeriods: 5, TreatMissingData: "notBreaching", RoleDimension: true,
		Description: "CPU utilization at or above 80 %"},
	{Name: "MaxUsedTxIDs", MetricName: "MaximumUsedTransactionIDs", Namespace: "AWS/RDS", Statistic: "Average",
		Comparison: "GreaterThanOrEqualToThreshold", Threshold: 600000000, Unit: "Count",
		PeriodSeconds: 60, EvaluationPeriods: 5, TreatMissingData: "notBreaching", RoleDimension: true,
		Description: "transaction ID age at or above 600 million: vacuum before wraparound"},
	{Name: "FreeLocalStorage", MetricName: "FreeLocalStorage", Namespace: "AWS/RDS", Statistic: "Average",
		Comparison: "LessThanOrEqualToThreshold", Threshold: 5368709120, Unit: "Bytes",
		PeriodSeconds: 60, EvaluationPeriods: 5, TreatMissingData: "notBreaching", RoleDimension: true,
		Description: "free local storage at or below 5 GiB"},
}

// Breaches reports whether value breaches the alarm's threshold.
func (a Alarm) Breaches(value float64) bool {
	switch a.Comparison {
	case "GreaterThanOrEqualToThreshold":
		return value >= a.Threshold
	case "GreaterThanThreshold":
		return value > a.Threshold
	case "LessThanOrEqualToThreshold":
		return value <= a.Threshold
	case "LessThanThreshold":
		return value < a.Threshold
	}
	panic(fmt.Sprintf("bestpractice: unknown comparison %q", a.Comparison))
}

// Event source types and categories for the RDS event subscriptions.
const (
	SourceCluster        = "db-cluster"
	SourceInstance       = "db-instance"
	SourceParameterGroup = "db-parameter-group"
)

// EventCategories lists, per source type, the categories subscribed to.
var EventCategories = map[string][]string{
	SourceCluster:        {"failover", "failure", "notification"},
	SourceInstance:       {"availability", "configuration change", "deletion", "failover", "failure", "maintenance", "notification", "recovery"},
	SourceParameterGroup: {"configuration change"},
}

// EventSourceTypes returns the source types in a stable order.
func EventSourceTypes() []string {
	out := make([]string, 0, len(EventCategories))
	for k := range EventCategories {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// StageSettings are what a stage changes.
type StageSettings struct {
	Reader                           bool // a reader instance in a second AZ
	BackupRetentionDays              int
	MonitoringIntervalSeconds        int // enhanced monitoring; 0 is off
	PerformanceInsightsRetentionDays int
	// DatabaseInsightsMode is CloudWatch Database Insights' mode on the cluster: "standard", or
	// "advanced" (execution plans, lock analysis, fleet views), which needs Performance
	// Insights with InsightsAdvancedRetentionDays of retention.
	DatabaseInsightsMode    string
	AutoMinorVersionUpgrade bool
	DeletionProtection      bool
	// SynchronousReplication: the local twin commits only once the reader has the WAL (prod).
	SynchronousReplication bool
	// AWSBackup puts the cluster in an AWS Backup plan (vault, daily rule, selection); other
	// stages opt in with database.awsBackup.
	AWSBackup bool
}

// Stages are the per-stage settings of DESIGN.md.
var Stages = map[string]StageSettings{
	"dev":      {Reader: false, BackupRetentionDays: 7, MonitoringIntervalSeconds: 0, PerformanceInsightsRetentionDays: 7, DatabaseInsightsMode: InsightsStandard, AutoMinorVersionUpgrade: true},
	"test":     {Reader: false, BackupRetentionDays: 7, MonitoringIntervalSeconds: 0, PerformanceInsightsRetentionDays: 7, DatabaseInsightsMode: InsightsStandard, AutoMinorVersionUpgrade: true},
	"pre-prod": {Reader: true, BackupRetentionDays: 7, MonitoringIntervalSeconds: 0, PerformanceInsightsRetentionDays: 7, DatabaseInsightsMode: InsightsStandard, AutoMinorVersionUpgrade: true, DeletionProtection: true},
	"prod":     {Reader: true, BackupRetentionDays: 35, MonitoringIntervalSeconds: 1, PerformanceInsightsRetentionDays: InsightsAdvancedRetentionDays, DatabaseInsightsMode: InsightsAdvanced, AutoMinorVersionUpgrade: false, DeletionProtection: true, SynchronousReplication: true, AWSBackup: true},
}

// Stage returns a stage's settings; an unknown stage is a programming error (configuration
// validation refuses it first).
func Stage(name string) StageSettings {
	s, ok := Stages[name]
	if !ok {
		panic(fmt.Sprintf("bestpractice: unknown stage %q", name))
	}
	return s
}

// The stages (EnvironmentStage), declared once here.
const (
	StageDev     = "dev"
	StageTest    = "test"
	StagePreProd = "pre-prod"
	StageProd    = "prod"
)

// StageNames lists the stages in DESIGN.md's order.
var StageNames = []string{StageDev, StageTest, StagePreProd, StageProd}

// The roles whose secrets rotate, as rotate-secret names them: the master user's and the
// application schema's owner, read-write and read-only roles, declared once here.
const (
	RoleMaster    = "master"
	RoleOwner     = "owner"
	RoleReadWrite = "rw"
	RoleReadOnly  = "ro"
)

// RotationRoles lists them, master first (the order rotation takes them in).
var RotationRoles = []string{RoleMaster, RoleOwner, RoleReadWrite, RoleReadOnly}

// MandatoryTags are the tag keys on every taggable resource, in the seed's order; each comes from
// the stack parameter of the same name.
var MandatoryTags = []string{"EnvironmentStage", "Application", "ApplicationVersion", "ProjectCostCenter", "ServiceOwnersEmailContact", "Confidentiality", "Compliance"}

// SampleMetricsSeconds is how often the local sampler reads metrics: enhanced monitoring's
// interval when on, else CloudWatch's basic 60 s.
func SampleMetricsSeconds(stage string) int {
	if s := Stage(stage); s.MonitoringIntervalSeconds > 0 {
		return s.MonitoringIntervalSeconds
	}
	return 60
}

// Secret generation, as the sample's master secret: characters RDS or a connection string
// would mangle are excluded; 32 characters (the sample had 16).
const (
	PasswordExcludeCharacters = `"@/\`
	PasswordLength            = 32
)

// SecretName is the master secret's name, as the sample names it: <stage>/aurora-pg/<stack>.
func SecretName(stage, stack string) string { return stage + "/aurora-pg/" + stack }
