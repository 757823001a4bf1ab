package stacks

import (
	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/cft"
)

// AWS Backup for prod and for the stages that opt in (AWSBackup=true): a vault encrypted with
// the stack's key, a plan with one daily rule keeping the stage's retention, the cluster
// assigned by ARN, and, when BackupCopyRegion is set, a copy of every recovery point to the
// vault that BackupCopyVault creates in that Region (with the user's key there). HIPAA and
// NIST 800-53 checks expect RDS in a backup plan; Aurora's own continuous backups stay.

const (
	dbBackupVault     = "BackupVault"
	dbBackupPlan      = "BackupPlan"
	dbBackupSelection = "BackupSelection"
	dbBackupRole      = "BackupRole"
	stageAWSBackup    = "AWSBackup"
	condBackup        = "HasAWSBackup"
	condBackupCopy    = "HasBackupCopy"

	managedPolicyBackup  = "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup"
	managedPolicyRestore = "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores"

	// Vault names: the stack name and a suffix, at most 50 characters (configuration validation
	// keeps database.stackName short enough).
	backupVaultSuffix = "-aurora"
	copyVaultSuffix   = "-copy"
)

// copyVaultArn is the vault BackupCopyVault creates in the copy Region.
const copyVaultArn = "arn:${AWS::Partition}:backup:${BackupCopyRegion}:${AWS::AccountId}:backup-vault:${AWS::StackName}" + copyVaultSuffix

func addBackupParameters(t *cft.Template) {
	t.AddParameter(&cft.Parameter{Name: "AWSBackup", Type: "String", Default: "false", AllowedValues: []any{"true", "false"},
		Description: "true puts the cluster in an AWS Backup plan on any stage (prod always is)"})
	t.AddParameter(&cft.Parameter{Name: "BackupCopyRegion", Type: "String", Default: "", AllowedPattern: apgstack.AWSRegionPattern.String(),
		Description:           "Optional. Copy every AWS Backup recovery point to the vault <stack>" + copyVaultSuffix + " in this Region (created first with the user's KMS key there)",
		ConstraintDescription: "empty or a Region name such as eu-central-1"})
	t.Group("AWS Backup", "AWSBackup", "BackupCopyRegion")
}

func backupParamValues(d apgstack.Database) []Param {
	return []Param{{"AWSBackup", boolString(d.AWSBackup)}, {"BackupCopyRegion", d.BackupCopyRegion}}
}

// mapTags are the mandatory tags as a map, the form AWS Backup takes.
func mapTags() map[string]any {
	out := map[string]any{}
	for _, k := range bestpractice.MandatoryTags {
		out[k] = cft.Ref(k)
	}
	return out
}

func addBackup(t *cft.Template) {
	m := t.Mapping(dbStageMap)
	for _, name := range bestpractice.StageNames {
		m.Values[name][stageAWSBackup] = boolString(bestpractice.Stage(name).AWSBackup)
	}
	t.AddCondition(condBackup, cft.Or(cft.Equals(stage(stageAWSBackup), "true"), cft.Equals(cft.Ref("AWSBackup"), "true")))
	t.AddCondition(condBackupCopy, cft.And(cft.Cond(condBackup), cft.Not(cft.Equals(cft.Ref("BackupCopyRegion"), ""))))

	// AWS Backup uses the key on the account's behalf for the vault and the recovery points.
	kp := t.Resource(dbKey).Properties["KeyPolicy"].(map[string]any)
	kp["Statement"] = append(kp["Statement"].([]any), map[string]any{
		"Sid": "UseThroughAWSBackup", "Effect": "Allow", "Principal": map[string]any{"AWS": accountRoot()},
		"Action": keyUseActions, "Resource": "*",
		"Condition": map[string]any{"StringEquals": map[string]any{
			"kms:CallerAccount": cft.Ref(cft.AccountId), "kms:ViaService": viaService("backup")}}})

	// Recovery points outlive the stack: a vault that holds them cannot be deleted anyway.
	v := t.AddResource(dbBackupVault, "AWS::Backup::BackupVault", map[string]any{
		"BackupVaultName":  cft.Sub("${AWS::StackName}" + backupVaultSuffix),
		"EncryptionKeyArn": cft.GetAtt(dbKey, "Arn"),
		"BackupVaultTags":  mapTags(),
	})
	v.Condition, v.DeletionPolicy, v.UpdateReplacePolicy = condBackup, "Retain", "Retain"

	keep := map[string]any{"DeleteAfterDays": stage(stageBackupDays)}
	t.AddResource(dbBackupPlan, "AWS::Backup::BackupPlan", map[string]any{
		"BackupPlan": map[string]any{
			"BackupPlanName": cft.Sub("${AWS::StackName}-aurora"),
			"BackupPlanRule": []any{map[string]any{
				"RuleName":                "daily",
				"TargetBackupVault":       cft.Ref(dbBackupVault),
				"ScheduleExpression":      bestpractice.BackupSchedule,
				"StartWindowMinutes":      bestpractice.BackupStartWindowMinutes,
				"CompletionWindowMinutes": bestpractice.BackupCompletionWindowMinutes,
				"Lifecycle":               keep,
				"RecoveryPointTags":       mapTags(),
				"CopyActions": cft.If(condBackupCopy, []any{map[string]any{
					"DestinationBackupVaultArn": cft.Sub(copyVaultArn),
					"Lifecycle":                 keep,
				}}, cft.NoValue()),
			}},
		},
		"BackupPlanTags": mapTags(),
	}).Condition = condBackup

	t.AddResource(dbBackupRole, "AWS::IAM::Role", map[string]any{
		"AssumeRolePolicyDocument": iamPolicy(map[string]any{
			"Effect": "Allow", "Principal": map[string]any{"Service": "backup.amazonaws.com"}, "Action": "sts:AssumeRole",
			"Condition": map[string]any{"StringEquals": map[string]any{"aws:SourceAccount": cft.Ref(cft.AccountId)}}}),
		"Path":              "/",
		"ManagedPolicyArns": []any{cft.Sub(managedPolicyBackup), cft.Sub(managedPolicyRestore)},
		"Tags":              mandatoryTags(),
	}).Condition = condBackup

	t.AddResource(dbBackupSelection, "AWS::Backup::BackupSelection", map[string]any{
		"BackupPlanId": cft.Ref(dbBackupPlan),
		"BackupSelection": map[string]any{
			"SelectionName": "aurora-cluster",
			"IamRoleArn":    cft.GetAtt(dbBackupRole, "Arn"),
			"Resources":     []any{cft.GetAtt(dbCluster, "DBClusterArn")},
		},
	}).Condition = condBackup
}

// BackupCopyVault is the stack to create in database.backupCopyRegion before the database
// stack: the vault the copies go to, encrypted with database.backupCopyKmsKeyArn. It is nil
// when no copy is configured.
func BackupCopyVault(cfg apgstack.Config) *Stack {
	d := cfg.Database
	if d.BackupCopyRegion == "" || !cfg.BacksUpWithAWSBackup() {
		return nil
	}
	t := cft.New("AWS Backup vault that receives the copies of the Aurora PostgreSQL cluster's recovery points from the database stack " + d.StackName)
	t.AddParameter(&cft.Parameter{Name: "DatabaseStackName", Type: "String", Description: "the database stack whose copies this vault receives",
		MinLength: cft.Int(1), MaxLength: cft.Int(apgstack.MaxBackupStackName), AllowedPattern: apgstack.StackNamePattern.String()})
	t.AddParameter(&cft.Parameter{Name: "KmsKeyArn", Type: "String", Description: "KMS key of this Region that encrypts the copies",
		AllowedPattern: apgstack.KMSKeyArnPattern.String()})
	addTagParameters(t)
	v := t.AddResource("CopyVault", "AWS::Backup::BackupVault", map[string]any{
		"BackupVaultName":  cft.Sub("${DatabaseStackName}" + copyVaultSuffix),
		"EncryptionKeyArn": cft.Ref("KmsKeyArn"),
		"BackupVaultTags":  mapTags(),
	})
	v.DeletionPolicy, v.UpdateReplacePolicy = "Retain", "Retain"
	t.AddOutput(&cft.Output{Name: "CopyVaultArn", Description: "the vault the database stack's backup plan copies to", Value: cft.GetAtt("CopyVault", "BackupVaultArn")})
	return &Stack{
		Kind:     "backup-copy",
		Name:     d.StackName + copyVaultSuffix,
		Template: t,
		Parameters: append([]Param{{"DatabaseStackName", d.StackName}, {"KmsKeyArn", d.BackupCopyKmsKeyArn}},
			tagParamValues(cfg)...),
		Tags: func() []Tag {
			var out []Tag
			for _, p := range tagParamValues(cfg) {
				out = append(out, Tag{p.ParameterKey, p.ParameterValue})
			}
			return out
		}(),
	}
}
