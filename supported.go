package apgstack

import (
	"fmt"
	"sort"
	"strings"

	"github.com/apgstack/apgstack/bestpractice"
)

// The lists below move with AWS; everything else in the templates keeps the original sample's
// constraints. Refresh them from `aws rds describe-db-engine-versions --engine aurora-postgresql`
// and `aws rds describe-orderable-db-instance-options --engine aurora-postgresql`.

// EngineVersions are the Aurora PostgreSQL versions offered, oldest first: every minor of
// bestpractice.Calendar (the release calendar, with each major's support dates).
var EngineVersions = bestpractice.EngineVersions()

// DefaultEngineVersion is the newest minor of the newest major that has been out for a while,
// on the calendar's date of record (so that templates do not change with the clock).
var DefaultEngineVersion = bestpractice.DefaultEngineVersion()

// InstanceClasses are the Aurora PostgreSQL instance classes offered: burstable Graviton for
// dev/test, memory-optimized Graviton (r6g, r7g, r8g) and Intel (r6i, r7i) for production.
var InstanceClasses = []string{
	"db.t4g.medium", "db.t4g.large",
	"db.r6g.large", "db.r6g.xlarge", "db.r6g.2xlarge", "db.r6g.4xlarge", "db.r6g.8xlarge", "db.r6g.12xlarge", "db.r6g.16xlarge",
	"db.r7g.large", "db.r7g.xlarge", "db.r7g.2xlarge", "db.r7g.4xlarge", "db.r7g.8xlarge", "db.r7g.12xlarge", "db.r7g.16xlarge",
	"db.r8g.large", "db.r8g.xlarge", "db.r8g.2xlarge", "db.r8g.4xlarge", "db.r8g.8xlarge", "db.r8g.12xlarge", "db.r8g.16xlarge",
	"db.r6i.large", "db.r6i.xlarge", "db.r6i.2xlarge", "db.r6i.4xlarge", "db.r6i.8xlarge", "db.r6i.12xlarge", "db.r6i.16xlarge",
	"db.r7i.large", "db.r7i.xlarge", "db.r7i.2xlarge", "db.r7i.4xlarge", "db.r7i.8xlarge", "db.r7i.12xlarge", "db.r7i.16xlarge",
	"db.x2g.large", "db.x2g.xlarge", "db.x2g.2xlarge", "db.x2g.4xlarge", "db.x2g.8xlarge",
}

// DefaultInstanceClass is the sample's default family moved to the current Graviton generation.
const DefaultInstanceClass = "db.r7g.large"

// BastionInstanceTypes are current x86 (t3, m7i) and Graviton (t4g, m7g) types.
var BastionInstanceTypes = []string{
	"t3.micro", "t3.small", "t3.medium", "t3.large", "t3.xlarge", "t3.2xlarge",
	"t4g.micro", "t4g.small", "t4g.medium", "t4g.large", "t4g.xlarge", "t4g.2xlarge",
	"m7i.large", "m7i.xlarge", "m7i.2xlarge",
	"m7g.large", "m7g.xlarge", "m7g.2xlarge",
}

// DefaultBastionInstanceType keeps the sample's default.
const DefaultBastionInstanceType = "t3.micro"

// BastionArch says which Amazon Linux image architecture an instance type needs.
func BastionArch(instanceType string) string {
	family := strings.SplitN(instanceType, ".", 2)[0]
	// Graviton families carry a "g" after the generation digit (t4g, m7g, c7gn, r8g).
	if len(family) >= 3 && strings.Contains(family[2:], "g") {
		return "arm64"
	}
	return "x86_64"
}

// LogRetentionDays are the values CloudWatch Logs accepts for RetentionInDays.
var LogRetentionDays = []int{1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}

// Stages are the allowed EnvironmentStage values.
var Stages = bestpractice.StageNames

// ConfidentialityValues and ComplianceValues are the sample's tag enums.
var (
	ConfidentialityValues = []string{"public", "private", "confidential", "pii/phi"}
	ComplianceValues      = []string{"hipaa", "sox", "fips", "other", "none"}
	Tenancies             = []string{"dedicated", "default"}
	LifecycleSupports     = []string{bestpractice.ExtendedSupportDisabled, bestpractice.ExtendedSupport}
	// PgauditClasses are the classes pgaudit.log accepts (each may be negated with "-").
	PgauditClasses = []string{"read", "write", "function", "role", "ddl", "misc", "misc_set", "all", "none"}
)

// EngineFamily maps an engine version to its parameter-group family (aurora-postgresql16).
func EngineFamily(version string) string {
	return "aurora-postgresql" + EngineMajor(version)
}

// EngineMajor returns the major version of an engine version ("16.9" -> "16").
func EngineMajor(version string) string {
	return strings.SplitN(version, ".", 2)[0]
}

// ReservedDBUsernames are names RDS refuses as the master user. "postgres" is not one: it is the
// RDS console's default master user name for (Aurora) PostgreSQL.
var ReservedDBUsernames = []string{
	"admin", "rdsadmin", "rds_superuser", "rdsrepladmin", "rds_replication",
	"rds_iam", "rds_password", "rdstopmgr", "pg_signal_backend", "public", "root", "user",
	"aurora_admin", "rds_ad", "template0", "template1",
}

// AlarmNames are the names of the best-practice alarms whose thresholds a drill may override.
var AlarmNames = func() []string {
	out := make([]string, len(bestpractice.Alarms))
	for i, a := range bestpractice.Alarms {
		out[i] = a.Name
	}
	return out
}()

func sortedMapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func joinAny[T any](list []T) string {
	parts := make([]string, len(list))
	for i, v := range list {
		parts[i] = fmt.Sprint(v)
	}
	return strings.Join(parts, ", ")
}
