package policy_test

import (
	"testing"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/cft/policy"
	"github.com/apgstack/apgstack/cft/validate"
	"github.com/apgstack/apgstack/internal/aws/stacks"
)

// The storage, Serverless v2 and AWS Backup variants of the database stack, and the copy
// Region's vault stack, pass validate and validate --policy with no error, as the per-stage
// stacks do (TestOurStacksPass).
func TestAuroraVariantsPass(t *testing.T) {
	const copyKey = "arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	for _, c := range []struct {
		name string
		set  func(*apgstack.Config)
	}{
		{"dev-serverless", func(c *apgstack.Config) {
			c.Environment.Stage, c.Database.Capacity, c.Database.MinACU, c.Database.MaxACU = "dev", "serverless", 0, 8
		}},
		{"prod-serverless", func(c *apgstack.Config) {
			c.Environment.Stage, c.Database.Capacity, c.Database.MinACU, c.Database.MaxACU = "prod", "serverless", 2, 64
		}},
		{"prod-iopt1-copy", func(c *apgstack.Config) {
			c.Environment.Stage, c.Database.StorageType = "prod", "aurora-iopt1"
			c.Database.BackupCopyRegion, c.Database.BackupCopyKmsKeyArn = "eu-central-1", copyKey
		}},
		{"test-backup", func(c *apgstack.Config) { c.Environment.Stage, c.Database.AWSBackup = "test", true }},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := apgstack.Default()
			c.set(&cfg)
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			db, err := stacks.Build(cfg, stacks.Database)
			if err != nil {
				t.Fatal(err)
			}
			list := []*stacks.Stack{db}
			if v := stacks.BackupCopyVault(cfg); v != nil {
				list = append(list, v)
			}
			for _, s := range list {
				if fs := validate.Template(s.Template, s.Kind); validate.Errors(fs) > 0 {
					t.Errorf("%s: validate: %v", s.Kind, fs)
				}
				for _, v := range variantsOf(s.Template, s.ParameterMap()) {
					fs, _, err := policy.Check(s.Kind+".yaml", s.Template, policy.Options{Values: v, Stages: []string{cfg.Environment.Stage}})
					if err != nil {
						t.Fatal(err)
					}
					for _, f := range fs {
						if f.Severity == policy.Error {
							t.Errorf("%s", f)
						}
					}
				}
			}
			if c.name == "prod-iopt1-copy" && len(list) != 2 {
				t.Error("the copy Region's vault stack is missing")
			}
		})
	}
}
