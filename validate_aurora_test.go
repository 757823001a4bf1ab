package apgstack

import (
	"strings"
	"testing"
)

// TestAuroraSettings: each storage, capacity and AWS Backup constraint names the field, the
// value and what is allowed.
func TestAuroraSettings(t *testing.T) {
	const copyKey = "arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	for _, c := range []struct {
		name  string
		set   func(*Config)
		field string
		want  string // substring of the error; empty: valid
	}{
		{"I/O-Optimized", func(c *Config) { c.Database.StorageType = "aurora-iopt1" }, "", ""},
		{"unknown storage", func(c *Config) { c.Database.StorageType = "gp3" }, "database.storageType", "one of aurora, aurora-iopt1"},
		{"unknown capacity", func(c *Config) { c.Database.Capacity = "auto" }, "database.capacity", "one of provisioned, serverless"},
		{"serverless dev pauses", func(c *Config) { serverless(c, "dev", 0, 4) }, "", ""},
		{"serverless prod may not pause", func(c *Config) { serverless(c, "prod", 0, 64) }, "database.minACU", "dev and test only"},
		{"serverless prod", func(c *Config) { serverless(c, "prod", 2, 64) }, "", ""},
		{"half steps only", func(c *Config) { serverless(c, "dev", 0.3, 4) }, "database.minACU", "in steps of 0.5"},
		{"max above 256", func(c *Config) { serverless(c, "dev", 1, 300) }, "database.maxACU", "1 to 256 ACUs"},
		{"max below min", func(c *Config) { serverless(c, "dev", 8, 4) }, "database.maxACU", "at least database.minACU (8)"},
		{"copy needs a key in that Region", func(c *Config) {
			c.Environment.Stage, c.Database.BackupCopyRegion = "prod", "eu-central-1"
			c.Database.BackupCopyKmsKeyArn = strings.Replace(copyKey, "eu-central-1", "us-east-1", 1)
		}, "database.backupCopyKmsKeyArn", "a KMS key in database.backupCopyRegion (eu-central-1)"},
		{"copy for prod", func(c *Config) {
			c.Environment.Stage, c.Database.BackupCopyRegion, c.Database.BackupCopyKmsKeyArn = "prod", "eu-central-1", copyKey
		}, "", ""},
		{"copy needs AWS Backup", func(c *Config) {
			c.Database.BackupCopyRegion, c.Database.BackupCopyKmsKeyArn = "eu-central-1", copyKey
		}, "database.backupCopyRegion", "AWS Backup plan"},
		{"copy to the same Region", func(c *Config) {
			c.Database.AWSBackup, c.Target.AWS.Region = true, "eu-central-1"
			c.Database.BackupCopyRegion, c.Database.BackupCopyKmsKeyArn = "eu-central-1", copyKey
		}, "database.backupCopyRegion", "other than target.aws.region"},
		{"key without Region", func(c *Config) { c.Database.BackupCopyKmsKeyArn = copyKey }, "database.backupCopyKmsKeyArn", "empty unless"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := Default()
			c.set(&cfg)
			err := cfg.ValidateAt(onIssueDay)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.field+": ") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want %s: ... %s, got %v", c.field, c.want, err)
			}
		})
	}
}

func serverless(c *Config, stage string, min, max float64) {
	c.Environment.Stage, c.Database.Capacity, c.Database.MinACU, c.Database.MaxACU = stage, "serverless", min, max
}

func TestNotes(t *testing.T) {
	cfg := Default()
	cfg.Environment.Stage = "prod"
	cfg.Database.StorageType = "aurora-iopt1"
	serverless(&cfg, "prod", 2, 64)
	notes := strings.Join(cfg.Notes(), "\n")
	for _, want := range []string{"once every 30 days", "25 %", "Serverless v2", "ACU utilization", "advanced mode", "465 days", "AWS Backup: daily recovery points kept 35 days"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	if err := cfg.Set("database.minACU", "1.5"); err != nil || cfg.Database.MinACU != 1.5 {
		t.Errorf("set a float field: %v %v", err, cfg.Database.MinACU)
	}
	if err := cfg.Set("database.maxACU", "lots"); err == nil || !strings.Contains(err.Error(), "a number") {
		t.Errorf("a float field refuses words: %v", err)
	}
}

func TestTwinNotes(t *testing.T) {
	cfg := Default()
	if n := cfg.TwinNotes(); len(n) != 0 {
		t.Errorf("defaults need no twin note: %v", n)
	}
	serverless(&cfg, "prod", 2, 8)
	n := strings.Join(cfg.TwinNotes(), "\n")
	if !strings.Contains(n, "ignores database.capacity") || !strings.Contains(n, "AWS Backup is realized on AWS only") {
		t.Errorf("twin notes %q", n)
	}
}
