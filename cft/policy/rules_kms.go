package policy

import (
	"fmt"

	"github.com/apgstack/apgstack/cft"
)

// KMS rules: customer-managed keys, rotation, key policies.

var kmsRules = []*Rule{
	{
		ID: "KMS-001", Severity: Error, Title: "KMS key rotation is on",
		Rationale: "yearly rotation limits how much data one key version protects, at no cost to availability",
		Fix:       "set EnableKeyRotation: true on symmetric keys",
		Source:    "Security Hub KMS.4",
		Types:     []string{kmsKey},
		check: forEach([]string{kmsKey}, func(c *Context, r *cft.Resource) []Violation {
			if spec, ok := Prop(r, "KeySpec"); ok && spec != "SYMMETRIC_DEFAULT" {
				return nil // rotation applies to symmetric keys only
			}
			return wantTrue(c, r, "EnableKeyRotation", "key rotation")
		}),
	},
	{
		ID: "KMS-002", Severity: Error, Title: "Key policies name their principals",
		Rationale: "a key policy with Principal * lets any AWS account use or manage the key once a condition slips",
		Fix:       "name the account root, roles or service principals instead of *",
		Source:    "Security Hub KMS.5",
		Types:     []string{kmsKey},
		check: forEach([]string{kmsKey}, func(c *Context, r *cft.Resource) []Violation {
			return noWildcardPrincipal(r, "Properties.KeyPolicy", "key policy")
		}),
	},
	{
		ID: "KMS-003", Severity: Error, Title: "Keys that encrypt databases outlive the stack",
		Rationale: "a final snapshot encrypted with a deleted key can never be restored",
		Fix:       "set DeletionPolicy: Retain and UpdateReplacePolicy: Retain on the key",
		Source:    "Security Hub KMS.3; Aurora User Guide: Encrypting Amazon Aurora resources",
		Types:     []string{kmsKey, dbCluster, dbInstance},
		check: func(c *Context) []Violation {
			var out []Violation
			seen := map[string]bool{}
			for _, db := range c.OfType(dbCluster, dbInstance) {
				v, _ := Prop(db, "KmsKeyId")
				k := c.keyResource(v)
				if k == nil || seen[k.Name] {
					continue
				}
				seen[k.Name] = true
				if k.DeletionPolicy != "Retain" && k.DeletionPolicy != "RetainExceptOnCreate" {
					out = append(out, one(k, "DeletionPolicy", "the key encrypts %s but is deleted with the stack", db.Name)...)
				}
				if k.UpdateReplacePolicy != "Retain" {
					out = append(out, one(k, "UpdateReplacePolicy", "the key encrypts %s but a replacing update deletes it", db.Name)...)
				}
			}
			return out
		},
	},
	{
		ID: "KMS-004", Severity: Error, Title: "No IAM policy decrypts with every key",
		Rationale: "kms:Decrypt on Resource * reaches every key the key policies delegate to IAM",
		Fix:       "name the key ARNs (e.g. !GetAtt Key.Arn) in the Resource of kms:Decrypt and kms:ReEncryptFrom",
		Source:    "Security Hub KMS.1, KMS.2",
		Types:     iamTypes,
		check: func(c *Context) []Violation {
			var out []Violation
			for _, s := range c.identityStatements() {
				if !s.allResources() {
					continue
				}
				for _, a := range []string{"kms:Decrypt", "kms:ReEncryptFrom"} {
					if s.grants(a) {
						out = append(out, Violation{s.res.Name, s.path, fmt.Sprintf("%s is allowed on every key (Resource *)", a)})
						break
					}
				}
			}
			return out
		},
	},
}
