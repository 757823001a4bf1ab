package bestpractice

import "fmt"

// Storage types of an Aurora cluster (the cluster's StorageType).
const (
	StorageStandard      = "aurora"       // Aurora Standard: storage and I/O billed separately
	StorageIOOptimized   = "aurora-iopt1" // Aurora I/O-Optimized: no I/O charges, dearer compute and storage
	DefaultStorageType   = StorageStandard
	IOOptimizedBreakEven = 25 // per cent of the cluster's spend on I/O above which I/O-Optimized pays off
)

// StorageTypes are the values of database.storageType.
var StorageTypes = []string{StorageStandard, StorageIOOptimized}

// StorageExplanation says what a storage type means and when to choose it, for explain.
func StorageExplanation(storageType string) string {
	switch storageType {
	case StorageIOOptimized:
		return fmt.Sprintf("storage: Aurora I/O-Optimized (aurora-iopt1): no charge per I/O request, for about 30 %% more on instances and storage; it pays off when I/O is above roughly %d %% of the cluster's Aurora spend. A cluster may switch to I/O-Optimized once every 30 days, and back to Standard at any time", IOOptimizedBreakEven)
	default:
		return fmt.Sprintf("storage: Aurora Standard (aurora): storage and every I/O request billed; switch to aurora-iopt1 (I/O-Optimized) when I/O passes roughly %d %% of the cluster's Aurora spend (Cost Explorer, usage type *StorageIOUsage). A cluster may switch to I/O-Optimized once every 30 days, and back at any time", IOOptimizedBreakEven)
	}
}

// Capacity kinds (database.capacity).
const (
	CapacityProvisioned = "provisioned"
	CapacityServerless  = "serverless"
	// ServerlessClass is the instance class of Aurora Serverless v2 instances.
	ServerlessClass = "db.serverless"
)

// Capacities are the values of database.capacity.
var Capacities = []string{CapacityProvisioned, CapacityServerless}

// Aurora Serverless v2 capacity, in Aurora capacity units (ACU, about 2 GiB of memory each):
// steps of half an ACU; a minimum of 0 lets an idle cluster pause, which only dev and test may
// do (a paused cluster takes about 15 seconds to answer its first connection).
const (
	ACUStep          = 0.5
	MaxACU           = 256
	DefaultMinACU    = 0.5
	DefaultMaxACU    = 16
	AutoPauseSeconds = 300 // idle time before a cluster with a minimum of 0 ACU pauses
	ACUAlarmPercent  = 90  // ACU utilization alarm threshold, per cent of the maximum
)

// AutoPauseAllowed reports whether a stage may pause its cluster (a minimum of 0 ACU).
func AutoPauseAllowed(stage string) bool { return stage == "dev" || stage == "test" }

// ServerlessAlarms replace, for Serverless v2, the alarms named in their Replaces: CPU
// utilization of a serverless instance is measured against its current capacity, which scales
// with the load; the capacity running out is what needs a person, and ACUUtilization (current
// ACUs over the cluster's maximum) says so.
var ServerlessAlarms = []Alarm{
	{Name: "ACU", MetricName: "ACUUtilization", Namespace: "AWS/RDS", Statistic: "Maximum",
		Comparison: "GreaterThanOrEqualToThreshold", Threshold: ACUAlarmPercent, Unit: "Percent",
		PeriodSeconds: 60, EvaluationPeriods: 5, TreatMissingData: "notBreaching", RoleDimension: true,
		Description: fmt.Sprintf("Serverless v2 capacity at or above %d %% of the maximum ACUs: raise database.maxACU", ACUAlarmPercent)},
}

// ServerlessReplaces names the alarm ServerlessAlarms take the place of.
const ServerlessReplaces = "CPU"

// AlarmsFor returns the alarms of a capacity kind.
func AlarmsFor(capacity string) []Alarm {
	if capacity != CapacityServerless {
		return Alarms
	}
	var out []Alarm
	for _, a := range Alarms {
		if a.Name == ServerlessReplaces {
			out = append(out, ServerlessAlarms...)
			continue
		}
		out = append(out, a)
	}
	return out
}

// CapacityExplanation says what the capacity settings mean, for explain.
func CapacityExplanation(capacity string, minACU, maxACU float64) string {
	if capacity != CapacityServerless {
		return "capacity: provisioned instances of database.instanceClass; alarms watch CPU utilization"
	}
	s := fmt.Sprintf("capacity: Aurora Serverless v2 (db.serverless instances) scaling between %g and %g ACUs (about %g to %g GiB of memory); alarms watch ACU utilization instead of CPU", minACU, maxACU, 2*minACU, 2*maxACU)
	if minACU == 0 {
		s += fmt.Sprintf("; the cluster pauses after %d s without connections and takes about 15 s to resume", AutoPauseSeconds)
	}
	return s
}

// TwinCapacity says what the local twin does with the capacity settings.
const TwinCapacity = "the local twin runs ordinary PostgreSQL servers: it ignores database.capacity, minACU, maxACU and storageType (they change billing and scaling on AWS only), never pauses, and keeps the CPU alarm"
