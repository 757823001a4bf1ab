package stacks

import (
	"strconv"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/cft"
)

// Storage type and capacity: Aurora Standard or I/O-Optimized storage, and provisioned
// instances or Aurora Serverless v2 (db.serverless instances scaling between MinACU and
// MaxACU, pausing when idle only where the minimum is 0, which the configuration allows for
// dev and test only). Alarms follow the capacity: Serverless v2 watches ACU utilization
// where provisioned instances watch CPU.

const (
	condServerless         = "IsServerless"
	condProvisioned        = "IsProvisioned"
	condAutoPause          = "HasAutoPause"
	condServerlessReplica  = "IsServerlessReplica"
	condProvisionedReplica = "IsProvisionedReplica"
)

func addCapacityParameters(t *cft.Template) {
	t.AddParameter(&cft.Parameter{Name: "StorageType", Type: "String", Default: bestpractice.DefaultStorageType, AllowedValues: anyList(bestpractice.StorageTypes),
		Description: "aurora (Standard: I/O billed per request) or aurora-iopt1 (I/O-Optimized: no I/O charges; pays off when I/O is above roughly a quarter of the cluster's spend; switchable once every 30 days)"})
	t.AddParameter(&cft.Parameter{Name: "DBCapacity", Type: "String", Default: bestpractice.CapacityProvisioned, AllowedValues: anyList(bestpractice.Capacities),
		Description: "provisioned (instances of DBInstanceClass) or serverless (Aurora Serverless v2: db.serverless instances between MinACU and MaxACU)"})
	t.AddParameter(&cft.Parameter{Name: "MinACU", Type: "Number", Default: bestpractice.DefaultMinACU, MinValue: cft.Float(0), MaxValue: cft.Float(bestpractice.MaxACU),
		Description: "Serverless v2 minimum capacity in ACUs (steps of 0.5); 0 pauses the idle cluster (dev and test only)"})
	t.AddParameter(&cft.Parameter{Name: "MaxACU", Type: "Number", Default: bestpractice.DefaultMaxACU, MinValue: cft.Float(1), MaxValue: cft.Float(bestpractice.MaxACU),
		Description: "Serverless v2 maximum capacity in ACUs (steps of 0.5)"})
	t.Group("Capacity and storage", "DBCapacity", "MinACU", "MaxACU", "StorageType")
}

func capacityParamValues(d apgstack.Database) []Param {
	acu := func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
	return []Param{
		{"StorageType", d.StorageType},
		{"DBCapacity", d.Capacity},
		{"MinACU", acu(d.MinACU)},
		{"MaxACU", acu(d.MaxACU)},
	}
}

// addCapacity runs after the cluster, instances and alarms exist: it sets their storage and
// capacity and puts the alarms that depend on the capacity under their conditions.
func addCapacity(t *cft.Template) {
	t.AddCondition(condServerless, cft.Equals(cft.Ref("DBCapacity"), bestpractice.CapacityServerless))
	t.AddCondition(condProvisioned, cft.Not(cft.Cond(condServerless)))
	t.AddCondition(condAutoPause, cft.And(cft.Cond(condServerless), cft.Equals(cft.Ref("MinACU"), "0")))
	t.AddCondition(condServerlessReplica, cft.And(cft.Cond(condServerless), cft.Cond(condReplica)))
	t.AddCondition(condProvisionedReplica, cft.And(cft.Cond(condProvisioned), cft.Cond(condReplica)))

	c := t.Resource(dbCluster).Properties
	c["StorageType"] = cft.Ref("StorageType")
	c["ServerlessV2ScalingConfiguration"] = cft.If(condServerless, map[string]any{
		"MinCapacity":           cft.Ref("MinACU"),
		"MaxCapacity":           cft.Ref("MaxACU"),
		"SecondsUntilAutoPause": cft.If(condAutoPause, bestpractice.AutoPauseSeconds, cft.NoValue()),
	}, cft.NoValue())
	for _, name := range []string{dbWriter, dbReader} {
		t.Resource(name).Properties["DBInstanceClass"] = cft.If(condServerless, bestpractice.ServerlessClass, cft.Ref("DBInstanceClass"))
	}

	// The alarm Serverless v2 replaces is kept for provisioned instances only, and the
	// serverless alarms are added for Serverless v2 only, each for the writer and the reader.
	replaced := false
	for _, role := range bestpractice.Roles {
		for _, a := range bestpractice.Alarms {
			if r := t.Resource(alarmID(a, role)); r != nil && a.Name == bestpractice.ServerlessReplaces {
				r.Condition, replaced = roleCondition(role, condProvisioned, condProvisionedReplica), true
			}
		}
	}
	if !replaced {
		return // alarms of a test without the replaced one
	}
	addAlarms(t, bestpractice.ServerlessAlarms)
	for _, role := range bestpractice.Roles {
		for _, a := range bestpractice.ServerlessAlarms {
			t.Resource(alarmID(a, role)).Condition = roleCondition(role, condServerless, condServerlessReplica)
		}
	}
}

func roleCondition(role, writer, reader string) string {
	if role == "WRITER" {
		return writer
	}
	return reader
}
