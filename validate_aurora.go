package apgstack

import (
	"fmt"
	"math"
	"regexp"
	"strconv"

	"github.com/apgstack/apgstack/bestpractice"
)

// KMSKeyArnPattern is a KMS key ARN; its fourth field is the key's Region.
var KMSKeyArnPattern = regexp.MustCompile(`^arn:aws[a-z-]*:kms:([a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]):[0-9]{12}:key/[a-zA-Z0-9-]+$`)

// MaxBackupStackName keeps the AWS Backup vault names (<database.stackName>-aurora, -copy)
// within the 50 characters AWS Backup allows.
const MaxBackupStackName = 43

// validateAurora checks the storage, capacity and AWS Backup settings.
func (v *validator) validateAurora(c *Config) {
	d := c.Database
	v.oneOf("database.storageType", d.StorageType, bestpractice.StorageTypes)
	v.oneOf("database.capacity", d.Capacity, bestpractice.Capacities)
	if d.Capacity == bestpractice.CapacityServerless {
		v.acu("database.minACU", d.MinACU, 0)
		v.acu("database.maxACU", d.MaxACU, 1)
		if d.MaxACU < d.MinACU {
			v.add("database.maxACU", acuString(d.MaxACU), "at least database.minACU ("+acuString(d.MinACU)+")")
		}
		if d.MinACU == 0 && !bestpractice.AutoPauseAllowed(c.Environment.Stage) {
			v.add("database.minACU", "0", fmt.Sprintf("at least %g for %s: a minimum of 0 (auto-pause) is for dev and test only, a paused cluster takes seconds to answer", bestpractice.ACUStep, c.Environment.Stage))
		}
	}
	if c.BacksUpWithAWSBackup() && len(d.StackName) > MaxBackupStackName {
		v.add("database.stackName", d.StackName, fmt.Sprintf("%d characters at most with AWS Backup: the backup vault is named after the stack, and vault names have 50 characters at most", MaxBackupStackName))
	}
	v.pattern("database.backupCopyRegion", d.BackupCopyRegion, AWSRegionPattern, "empty (no copy) or a Region name such as eu-central-1")
	switch {
	case d.BackupCopyRegion == "" && d.BackupCopyKmsKeyArn != "":
		v.add("database.backupCopyKmsKeyArn", d.BackupCopyKmsKeyArn, "empty unless database.backupCopyRegion is set")
	case d.BackupCopyRegion != "":
		m := KMSKeyArnPattern.FindStringSubmatch(d.BackupCopyKmsKeyArn)
		if m == nil || m[1] != d.BackupCopyRegion {
			v.add("database.backupCopyKmsKeyArn", d.BackupCopyKmsKeyArn, "the ARN of a KMS key in database.backupCopyRegion ("+d.BackupCopyRegion+"), arn:aws:kms:"+d.BackupCopyRegion+":<account>:key/<id>")
		}
		if d.BackupCopyRegion == c.Target.AWS.Region {
			v.add("database.backupCopyRegion", d.BackupCopyRegion, "a Region other than target.aws.region: a copy in the same Region survives nothing the original does not")
		}
		if !c.BacksUpWithAWSBackup() {
			v.add("database.backupCopyRegion", d.BackupCopyRegion, "empty unless the cluster is in an AWS Backup plan (prod, or database.awsBackup: true)")
		}
	}
}

func (v *validator) acu(field string, value, lo float64) {
	if value < lo || value > bestpractice.MaxACU || math.Mod(value, bestpractice.ACUStep) != 0 {
		v.add(field, acuString(value), fmt.Sprintf("%g to %d ACUs in steps of %g", lo, bestpractice.MaxACU, bestpractice.ACUStep))
	}
}

func acuString(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// BacksUpWithAWSBackup reports whether the cluster is in an AWS Backup plan: always for a stage
// whose best practice says so (prod), and when database.awsBackup opts in.
func (c *Config) BacksUpWithAWSBackup() bool {
	s, ok := bestpractice.Stages[c.Environment.Stage]
	return c.Database.AWSBackup || ok && s.AWSBackup
}

// InstanceClassOf is the class every instance runs: db.serverless for Serverless v2.
func (d Database) InstanceClassOf() string {
	if d.Capacity == bestpractice.CapacityServerless {
		return bestpractice.ServerlessClass
	}
	return d.InstanceClass
}

// Notes say what the configuration's choices mean, for explain: storage, capacity, Database
// Insights and AWS Backup, each in a line.
func (c *Config) Notes() []string {
	d := c.Database
	s, ok := bestpractice.Stages[c.Environment.Stage]
	if !ok {
		return nil
	}
	notes := []string{
		bestpractice.StorageExplanation(d.StorageType),
		bestpractice.CapacityExplanation(d.Capacity, d.MinACU, d.MaxACU),
		fmt.Sprintf("Database Insights: %s mode, Performance Insights kept %d days on every instance", s.DatabaseInsightsMode, s.PerformanceInsightsRetentionDays),
	}
	if c.BacksUpWithAWSBackup() {
		b := fmt.Sprintf("AWS Backup: daily recovery points kept %d days in a vault encrypted with the stack's key", s.BackupRetentionDays)
		if d.BackupCopyRegion != "" {
			b += ", copied to " + d.BackupCopyRegion + " (encrypted with " + d.BackupCopyKmsKeyArn + ")"
		}
		notes = append(notes, b)
	}
	return notes
}

// TwinNotes say plainly what the local twin does with the settings that only AWS realizes; the
// twin prints them (with Warnings) when it starts or updates.
func (c *Config) TwinNotes() []string {
	d := c.Database
	var out []string
	if d.Capacity != bestpractice.CapacityProvisioned || d.StorageType != bestpractice.DefaultStorageType {
		out = append(out, bestpractice.TwinCapacity)
	}
	if c.BacksUpWithAWSBackup() {
		out = append(out, "AWS Backup is realized on AWS only: the twin's pgBackRest backups keep the stage's retention and are not copied to another Region")
	}
	return out
}
