package stacks

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/cft"
	"github.com/apgstack/apgstack/internal/testkit/golden"
)

// TestDatabaseInsights: the cluster runs Database Insights in the stage's mode, with the
// cluster-level Performance Insights settings the mode needs, and every instance carries the
// same Performance Insights and enhanced monitoring settings.
func TestDatabaseInsights(t *testing.T) {
	for _, c := range dbCases {
		t.Run(c.name, func(t *testing.T) {
			e := explainDB(t, c)
			want := bestpractice.Stage(c.stage)
			cl := e.Resource(dbCluster).Properties
			if cl["DatabaseInsightsMode"] != want.DatabaseInsightsMode {
				t.Errorf("DatabaseInsightsMode %v, want %s", cl["DatabaseInsightsMode"], want.DatabaseInsightsMode)
			}
			if cl["PerformanceInsightsEnabled"] != true || cl["PerformanceInsightsKmsKeyId"] == nil {
				t.Errorf("cluster Performance Insights: %v %v", cl["PerformanceInsightsEnabled"], cl["PerformanceInsightsKmsKeyId"])
			}
			if want.DatabaseInsightsMode == bestpractice.InsightsAdvanced && str(cl["PerformanceInsightsRetentionPeriod"]) != fmt.Sprint(bestpractice.InsightsAdvancedRetentionDays) {
				t.Errorf("advanced mode needs %d days, got %v", bestpractice.InsightsAdvancedRetentionDays, cl["PerformanceInsightsRetentionPeriod"])
			}
			for _, in := range e.OfType("AWS::RDS::DBInstance") {
				p := in.Properties
				if str(p["PerformanceInsightsRetentionPeriod"]) != str(cl["PerformanceInsightsRetentionPeriod"]) {
					t.Errorf("%s retention %v, cluster %v", in.Name, p["PerformanceInsightsRetentionPeriod"], cl["PerformanceInsightsRetentionPeriod"])
				}
				if !reflect.DeepEqual(p["PerformanceInsightsKMSKeyId"], cl["PerformanceInsightsKmsKeyId"]) {
					t.Errorf("%s key %v, cluster %v", in.Name, p["PerformanceInsightsKMSKeyId"], cl["PerformanceInsightsKmsKeyId"])
				}
			}
		})
	}
	if bestpractice.Stage("prod").DatabaseInsightsMode != bestpractice.InsightsAdvanced {
		t.Error("prod runs advanced Database Insights")
	}
}

// auroraVariant is a configuration beyond the per-stage cases: storage, capacity, AWS Backup.
type auroraVariant struct {
	name string
	set  func(*apgstack.Config)
}

const testCopyKey = "arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"

// AuroraVariants are checked here and, for validate and the policy, in cft/policy.
var auroraVariants = []auroraVariant{
	{"dev-serverless", func(c *apgstack.Config) {
		c.Environment.Stage, c.Database.Capacity, c.Database.MinACU, c.Database.MaxACU = "dev", "serverless", 0, 8
	}},
	{"prod-serverless", func(c *apgstack.Config) {
		c.Environment.Stage, c.Database.Capacity, c.Database.MinACU, c.Database.MaxACU = "prod", "serverless", 2, 64
	}},
	{"prod-iopt1", func(c *apgstack.Config) {
		c.Environment.Stage, c.Database.StorageType = "prod", "aurora-iopt1"
		c.Database.BackupCopyRegion, c.Database.BackupCopyKmsKeyArn = "eu-central-1", testCopyKey
	}},
}

func (v auroraVariant) config(t *testing.T) apgstack.Config {
	t.Helper()
	cfg := apgstack.Default()
	cfg.Database.BootstrapS3Bucket, cfg.Database.BootstrapS3Key = testBucket, testKey
	v.set(&cfg)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("%s: %v", v.name, err)
	}
	return cfg
}

func TestDatabaseVariantsGolden(t *testing.T) {
	for _, v := range auroraVariants {
		t.Run(v.name, func(t *testing.T) {
			e, err := Explain(buildDB(t, v.config(t)))
			if err != nil {
				t.Fatal(err)
			}
			out, err := e.Template().YAML()
			if err != nil {
				t.Fatal(err)
			}
			golden.Assert(t, "database-"+v.name+".golden.yaml", out)
			checkReferences(t, e)
		})
	}
}

// TestDatabaseCapacity: storage type and Serverless v2 reach the cluster and the instances,
// auto-pause only with a minimum of 0, and the alarms follow the capacity.
func TestDatabaseCapacity(t *testing.T) {
	for _, v := range append(auroraVariants, auroraVariant{"prod-provisioned", func(c *apgstack.Config) { c.Environment.Stage = "prod" }}) {
		t.Run(v.name, func(t *testing.T) {
			cfg := v.config(t)
			e, err := Explain(buildDB(t, cfg))
			if err != nil {
				t.Fatal(err)
			}
			d := cfg.Database
			cl := e.Resource(dbCluster).Properties
			if cl["StorageType"] != d.StorageType {
				t.Errorf("StorageType %v, want %s", cl["StorageType"], d.StorageType)
			}
			scaling, _ := cl["ServerlessV2ScalingConfiguration"].(map[string]any)
			serverless := d.Capacity == bestpractice.CapacityServerless
			if (scaling != nil) != serverless {
				t.Fatalf("scaling configuration %v for capacity %s", scaling, d.Capacity)
			}
			if serverless {
				if str(scaling["MinCapacity"]) != fmt.Sprint(d.MinACU) || str(scaling["MaxCapacity"]) != fmt.Sprint(d.MaxACU) {
					t.Errorf("scaling %v for %g..%g", scaling, d.MinACU, d.MaxACU)
				}
				if _, pauses := scaling["SecondsUntilAutoPause"]; pauses != (d.MinACU == 0) {
					t.Errorf("auto-pause %v with a minimum of %g", scaling["SecondsUntilAutoPause"], d.MinACU)
				}
			}
			wantClass := cfg.Database.InstanceClassOf()
			for _, in := range e.OfType("AWS::RDS::DBInstance") {
				if in.Properties["DBInstanceClass"] != wantClass {
					t.Errorf("%s class %v, want %s", in.Name, in.Properties["DBInstanceClass"], wantClass)
				}
			}
			metrics := map[string]int{}
			for _, a := range e.OfType("AWS::CloudWatch::Alarm") {
				metrics[str(a.Properties["MetricName"])]++
			}
			roles := len(e.OfType("AWS::RDS::DBInstance"))
			cpu, acu := metrics["CPUUtilization"], metrics["ACUUtilization"]
			if serverless && (cpu != 0 || acu != roles) || !serverless && (cpu != roles || acu != 0) {
				t.Errorf("capacity %s: %d CPU and %d ACU alarms for %d roles", d.Capacity, cpu, acu, roles)
			}
		})
	}
}

// TestDatabaseAWSBackup: prod, and a stage that opts in, get a vault with the stack's key, a
// daily plan keeping the stage's retention, and a selection of the cluster by ARN; a copy goes
// to the vault BackupCopyVault makes in the copy Region.
func TestDatabaseAWSBackup(t *testing.T) {
	for _, c := range []struct {
		name   string
		set    func(*apgstack.Config)
		backup bool
		copyTo string
	}{
		{"dev", func(c *apgstack.Config) {}, false, ""},
		{"dev opts in", func(c *apgstack.Config) { c.Database.AWSBackup = true }, true, ""},
		{"prod", func(c *apgstack.Config) { c.Environment.Stage = "prod" }, true, ""},
		{"prod with a copy", auroraVariants[2].set, true, "eu-central-1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := auroraVariant{c.name, c.set}.config(t)
			e, err := Explain(buildDB(t, cfg))
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []string{dbBackupVault, dbBackupPlan, dbBackupSelection, dbBackupRole} {
				if (e.Resource(n) != nil) != c.backup {
					t.Fatalf("%s present=%v, want %v", n, e.Resource(n) != nil, c.backup)
				}
			}
			if !c.backup {
				return
			}
			checkReferences(t, e)
			vault := e.Resource(dbBackupVault)
			if !reflect.DeepEqual(vault.Properties["EncryptionKeyArn"], cft.GetAtt(dbKey, "Arn")) || vault.DeletionPolicy != "Retain" {
				t.Errorf("vault %v (deletion %s)", vault.Properties, vault.DeletionPolicy)
			}
			rule := e.Resource(dbBackupPlan).Properties["BackupPlan"].(map[string]any)["BackupPlanRule"].([]any)[0].(map[string]any)
			days := bestpractice.Stage(cfg.Environment.Stage).BackupRetentionDays
			if str(rule["Lifecycle"].(map[string]any)["DeleteAfterDays"]) != fmt.Sprint(days) || rule["ScheduleExpression"] != bestpractice.BackupSchedule {
				t.Errorf("rule %v: want daily, kept %d days", rule, days)
			}
			copies, _ := rule["CopyActions"].([]any)
			if (len(copies) == 1) != (c.copyTo != "") {
				t.Fatalf("copy actions %v, want a copy to %q", copies, c.copyTo)
			}
			if c.copyTo != "" {
				dest := fmt.Sprint(copies[0].(map[string]any)["DestinationBackupVaultArn"])
				if !strings.Contains(dest, ":backup:"+c.copyTo+":") || !strings.Contains(dest, cfg.Database.StackName+copyVaultSuffix) {
					t.Errorf("copy destination %s", dest)
				}
			}
			sel := e.Resource(dbBackupSelection).Properties["BackupSelection"].(map[string]any)
			if !reflect.DeepEqual(sel["Resources"], []any{cft.GetAtt(dbCluster, "DBClusterArn")}) {
				t.Errorf("selection %v: want the cluster by ARN", sel["Resources"])
			}
		})
	}
}

// The copy Region's vault stack: the user's key, the name the plan copies to, clean for validate.
func TestBackupCopyVault(t *testing.T) {
	if BackupCopyVault(apgstack.Default()) != nil {
		t.Error("no copy configured, no copy vault")
	}
	cfg := auroraVariants[2].config(t)
	s := BackupCopyVault(cfg)
	if s == nil {
		t.Fatal("no copy vault stack")
	}
	if err := s.Template.Check(); err != nil {
		t.Fatal(err)
	}
	e, err := Explain(s)
	if err != nil {
		t.Fatal(err)
	}
	v := e.Resource("CopyVault").Properties
	if v["EncryptionKeyArn"] != testCopyKey || v["BackupVaultName"] != cfg.Database.StackName+copyVaultSuffix {
		t.Errorf("copy vault %v", v)
	}
	checkTags(t, s.Template)
	y, err := e.Template().YAML()
	if err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "backup-copy-vault.golden.yaml", y)
}
