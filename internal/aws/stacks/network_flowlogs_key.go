package stacks

import "github.com/apgstack/apgstack/cft"

// The flow log group is encrypted with a customer-managed key of its own (checkov CKV_AWS_158,
// cdk-nag and the HIPAA/NIST packs): flow logs show who talks to whom. Only CloudWatch Logs of
// this account and Region uses the key, for log groups of this account.
const flowLogsKey = "FlowLogsKMSKey"

func addFlowLogsKey(t *cft.Template) {
	t.AddResource(flowLogsKey, "AWS::KMS::Key", map[string]any{
		"Description":       cft.Sub("apgstack ${AWS::StackName}: VPC flow logs"),
		"EnableKeyRotation": true,
		"KeyPolicy": iamPolicy(
			map[string]any{"Sid": "KeyAdministration", "Effect": "Allow", "Principal": map[string]any{"AWS": accountRoot()},
				"Action": keyAdminActions, "Resource": "*"},
			map[string]any{"Sid": "CloudWatchLogs", "Effect": "Allow",
				"Principal": map[string]any{"Service": cft.Sub("logs.${AWS::Region}.amazonaws.com")},
				"Action":    []any{"kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"},
				"Resource":  "*",
				"Condition": map[string]any{"ArnLike": map[string]any{"kms:EncryptionContext:aws:logs:arn": cft.Sub("arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*")}}},
		),
	})
}
