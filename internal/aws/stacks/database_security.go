package stacks

import (
	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/cft"
)

// iamPolicy is an IAM policy document.
func iamPolicy(statements ...any) map[string]any {
	return map[string]any{"Version": "2012-10-17", "Statement": statements}
}

// accountRoot names the account: in a key or resource policy it delegates to the account's IAM
// policies (an Allow) or covers every principal of the account (a Deny).
func accountRoot() any { return cft.Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root") }

func viaService(service string) any { return cft.Sub(service + ".${AWS::Region}.amazonaws.com") }

// keyAdminActions manage the key without using it: the usual key-administrator statement. Use of
// the key goes only through the services below, so nobody decrypts the database's data keys,
// secrets or logs directly.
var keyAdminActions = []any{
	"kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
	"kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource",
	"kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion", "kms:RotateKeyOnDemand",
}

var keyUseActions = []any{
	"kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
	"kms:CreateGrant", "kms:ListGrants", "kms:DescribeKey",
}

// bootstrapLogGroupName is the bootstrap function's log group, named so that the key policy can
// name it before it exists.
const bootstrapLogGroupName = "/aws/lambda/${AWS::StackName}-DBBootStrap"

func addKey(t *cft.Template) {
	logArn := func(group string) any {
		return cft.Sub("arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:" + group)
	}
	via := func(sid, service string) map[string]any {
		return map[string]any{"Sid": sid, "Effect": "Allow", "Principal": map[string]any{"AWS": accountRoot()},
			"Action": keyUseActions, "Resource": "*",
			"Condition": map[string]any{"StringEquals": map[string]any{
				"kms:CallerAccount": cft.Ref(cft.AccountId), "kms:ViaService": viaService(service)}}}
	}
	k := t.AddResource(dbKey, "AWS::KMS::Key", map[string]any{
		"Description":       cft.Sub("apgstack ${AWS::StackName}: Aurora PostgreSQL storage, Performance Insights, secrets, logs and notification topic"),
		"EnableKeyRotation": true,
		"KeyPolicy": iamPolicy(
			map[string]any{"Sid": "KeyAdministration", "Effect": "Allow", "Principal": map[string]any{"AWS": accountRoot()},
				"Action": keyAdminActions, "Resource": "*"},
			via("UseThroughRDS", "rds"),
			via("UseThroughSecretsManager", "secretsmanager"),
			// The bootstrap function's dead letters go to the encrypted topic.
			via("UseThroughSNS", "sns"),
			// CloudWatch Logs encrypts the exported PostgreSQL log and the bootstrap's log with
			// this key; the encryption context pins it to those log groups.
			map[string]any{"Sid": "CloudWatchLogs", "Effect": "Allow",
				"Principal": map[string]any{"Service": cft.Sub("logs.${AWS::Region}.amazonaws.com")},
				"Action":    []any{"kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"},
				"Resource":  "*",
				"Condition": map[string]any{"ArnLike": map[string]any{"kms:EncryptionContext:aws:logs:arn": []any{
					logArn("/aws/rds/cluster/*"), logArn(bootstrapLogGroupName)}}}},
			// An encrypted topic that the publishers cannot encrypt for delivers nothing:
			// CloudWatch alarms and RDS event notifications publish to it.
			map[string]any{"Sid": "AlarmAndEventPublishers", "Effect": "Allow",
				"Principal": map[string]any{"Service": []any{"cloudwatch.amazonaws.com", "events.rds.amazonaws.com"}},
				"Action":    []any{"kms:Decrypt", "kms:GenerateDataKey*"}, "Resource": "*"},
		),
		"Tags": mandatoryTags(nameTag(cft.Sub("${AWS::StackName}-aurora"))),
	})
	// Kept when the stack is deleted or the key replaced: the final snapshots are encrypted with
	// it and stay restorable only while it exists.
	k.DeletionPolicy, k.UpdateReplacePolicy = "Retain", "Retain"
	// The alias is retained with its key, so the retained key stays findable by name; the
	// stack's UUID in the name lets a stack of the same name be created again. A rename
	// replaces the alias and deletes the old one (UpdateReplacePolicy Delete).
	a := t.AddResource(dbKeyAlias, "AWS::KMS::Alias", map[string]any{
		"AliasName":   cft.Join("", "alias/", cft.Ref(cft.StackName), "-aurora-", stackUUIDPrefix()),
		"TargetKeyId": cft.Ref(dbKey),
	})
	a.DeletionPolicy, a.UpdateReplacePolicy = "Retain", "Delete"
}

// stackUUIDPrefix is the first block of the stack id's UUID (8 hex digits).
func stackUUIDPrefix() any {
	return cft.Select(0, cft.Split("-", cft.Select(2, cft.Split("/", cft.Ref(cft.StackId)))))
}

func addTopic(t *cft.Template) {
	t.AddResource(dbTopic, "AWS::SNS::Topic", map[string]any{
		"KmsMasterKeyId": cft.Ref(dbKey),
		"Tags":           mandatoryTags(),
	})
	t.AddResource(dbSubscription, "AWS::SNS::Subscription", map[string]any{
		"TopicArn": cft.Ref(dbTopic),
		"Protocol": "email",
		"Endpoint": cft.Ref("NotificationList"),
	})
	publisher := func(sid, service string, source any) map[string]any {
		return map[string]any{"Sid": sid, "Effect": "Allow", "Principal": map[string]any{"Service": service},
			"Action": "sns:Publish", "Resource": cft.Ref(dbTopic),
			"Condition": map[string]any{
				"StringEquals": map[string]any{"aws:SourceAccount": cft.Ref(cft.AccountId)},
				"ArnLike":      map[string]any{"aws:SourceArn": source}}}
	}
	t.AddResource(dbTopicPolicy, "AWS::SNS::TopicPolicy", map[string]any{
		"Topics": []any{cft.Ref(dbTopic)},
		"PolicyDocument": iamPolicy(
			map[string]any{"Sid": "TopicOwner", "Effect": "Allow", "Principal": map[string]any{"AWS": accountRoot()},
				"Action": []any{"sns:GetTopicAttributes", "sns:SetTopicAttributes", "sns:AddPermission", "sns:RemovePermission",
					"sns:DeleteTopic", "sns:Subscribe", "sns:ListSubscriptionsByTopic", "sns:Publish"},
				"Resource": cft.Ref(dbTopic)},
			publisher("CloudWatchAlarms", "cloudwatch.amazonaws.com",
				cft.Sub("arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*")),
			publisher("RDSEvents", "events.rds.amazonaws.com",
				cft.Sub("arn:${AWS::Partition}:rds:${AWS::Region}:${AWS::AccountId}:*")),
		),
	})
}

func addNetworking(t *cft.Template) {
	t.AddResource(dbSubnetGroup, "AWS::RDS::DBSubnetGroup", map[string]any{
		"DBSubnetGroupDescription": cft.Ref(cft.StackName),
		"SubnetIds":                importPrivateSubnets(),
		"Tags":                     mandatoryTags(),
	})
	ingress := func(source any, desc string) map[string]any {
		return map[string]any{"IpProtocol": "tcp", "FromPort": cft.Ref("DBPort"), "ToPort": cft.Ref("DBPort"),
			"SourceSecurityGroupId": source, "Description": desc}
	}
	// Only the DB port, only from the bastion and the in-VPC Lambdas (bootstrap, rotation). The
	// sample's self-referencing all-traffic rule is gone: Aurora instances replicate through the
	// storage layer, not through this group.
	t.AddResource(dbSecurityGroup, "AWS::EC2::SecurityGroup", map[string]any{
		"GroupDescription": cft.Ref(cft.StackName),
		"VpcId":            cft.ImportSub("${ParentVPCStack}-VPC"),
		"SecurityGroupIngress": []any{
			ingress(cft.ImportSub("${ParentSSHBastionStack}-BastionSecurityGroupID"), "Access to Bastion Host Security Group"),
			ingress(importLambdaSG(), "Access to Lambda Security Group"),
		},
		// The cluster opens no connections (replies to allowed ingress are stateful); a rule to
		// the loopback address replaces EC2's allow-all default egress.
		"SecurityGroupEgress": []any{map[string]any{"IpProtocol": "-1", "CidrIp": "127.0.0.1/32",
			"Description": "no egress: the cluster initiates no connections"}},
		"Tags": mandatoryTags(nameTag(cft.Sub("${AWS::StackName}-AuroraClusterSecurityGroup"))),
	})
}

// familyOfVersion is the parameter-group family of the chosen engine version.
func familyOfVersion() any { return cft.FindInMap(dbFamilyMap, cft.Ref("DBEngineVersion"), "family") }

// parameterMap renders parameter-group entries; overrides replace a value by a template value.
func parameterMap(entries []bestpractice.Parameter, overrides map[string]any) map[string]any {
	m := make(map[string]any, len(entries))
	for _, p := range entries {
		m[p.Name] = p.Value
		if v, ok := overrides[p.Name]; ok {
			m[p.Name] = v
		}
	}
	return m
}

func addParameterGroups(t *cft.Template) {
	t.AddResource(dbClusterParams, "AWS::RDS::DBClusterParameterGroup", map[string]any{
		"Description": cft.Join("- ", "Aurora PG Cluster Parameter Group for  Cloudformation Stack ", cft.Ref("DBName")),
		"Family":      familyOfVersion(),
		"Parameters":  parameterMap(bestpractice.ClusterParameters, nil),
		"Tags":        mandatoryTags(),
	})
	t.AddResource(dbInstanceParams, "AWS::RDS::DBParameterGroup", map[string]any{
		"Description": cft.Join("- ", "Aurora PG Database Instance Parameter Group for Cloudformation Stack ", cft.Ref("DBName")),
		"Family":      familyOfVersion(),
		"Parameters":  parameterMap(bestpractice.InstanceParameterGroup(""), map[string]any{"pgaudit.log": cft.Ref("PgauditLog")}),
		"Tags":        mandatoryTags(),
	})
}

// Logical ids of a secret's companions. The master secret's keep the sample's names.
func attachmentID(secret string) string {
	if secret == dbMasterSecret {
		return "SecretAuroraClusterAttachment"
	}
	return secret + "Attachment"
}

func policyID(secret string) string {
	if secret == dbMasterSecret {
		return "AuroraSecretResourcePolicy"
	}
	return secret + "ResourcePolicy"
}

// secretName is <stage>/aurora-pg/<stack>[/suffix]: bestpractice.SecretName, in the template.
func secretName(suffix ...any) any {
	parts := append([]any{cft.Ref("EnvironmentStage"), "aurora-pg", cft.Ref(cft.StackName)}, suffix...)
	return cft.Join("/", parts...)
}

func generated(template any) map[string]any {
	return map[string]any{
		"SecretStringTemplate": template,
		"GenerateStringKey":    "password",
		"PasswordLength":       bestpractice.PasswordLength,
		"ExcludeCharacters":    bestpractice.PasswordExcludeCharacters,
	}
}

// denyDelete protects a secret: nobody in the account may delete it while this policy is
// attached. CloudFormation removes the policy before the secret (the policy refers to it), so
// deleting the stack still works; the master secret's policy is, in addition, referred to by
// the cluster (see masterSecretField), so it stays until the cluster is gone.
func denyDelete(t *cft.Template, secret, condition string) {
	t.AddResource(policyID(secret), "AWS::SecretsManager::ResourcePolicy", map[string]any{
		"SecretId":          cft.Ref(secret),
		"BlockPublicPolicy": true,
		"ResourcePolicy": iamPolicy(map[string]any{
			"Sid": "KeepWhileTheClusterExists", "Effect": "Deny", "Principal": map[string]any{"AWS": accountRoot()},
			"Action": "secretsmanager:DeleteSecret", "Resource": "*"}),
	}).Condition = condition
}

func attach(t *cft.Template, secret, condition string) {
	t.AddResource(attachmentID(secret), "AWS::SecretsManager::SecretTargetAttachment", map[string]any{
		"SecretId":   cft.Ref(secret),
		"TargetId":   cft.Ref(dbCluster),
		"TargetType": "AWS::RDS::DBCluster",
	}).Condition = condition
}

// masterSecretField is a dynamic reference to a field of the master secret. It names the secret
// through its resource policy's Id (the secret's ARN): the cluster then depends on the policy,
// and CloudFormation removes the deletion protection only after the cluster is deleted.
func masterSecretField(field string) any {
	return cft.Join("", "{{resolve:secretsmanager:", cft.GetAtt(policyID(dbMasterSecret), "Id"), ":SecretString:"+field+"}}")
}

func addSecrets(t *cft.Template) {
	t.AddResource(dbMasterSecret, "AWS::SecretsManager::Secret", map[string]any{
		"Name":                 secretName(),
		"Description":          cft.Sub("Master user of the Aurora PostgreSQL cluster of stack ${AWS::StackName}"),
		"KmsKeyId":             cft.Ref(dbKey),
		"GenerateSecretString": generated(cft.Sub(`{"username": "${DBUsername}"}`)),
		"Tags":                 mandatoryTags(),
	}).Condition = condNoSnapshot
	attach(t, dbMasterSecret, condNoSnapshot)
	denyDelete(t, dbMasterSecret, condNoSnapshot)

	// The application roles exist only once the bootstrap created them, so their secrets come
	// with the bootstrap. masterarn and the attachment's host fields are what the multi-user
	// rotation function reads.
	for _, s := range appSecrets() {
		t.AddResource(s.Logical, "AWS::SecretsManager::Secret", map[string]any{
			"Name":        secretName(cft.Sub(s.Role)),
			"Description": cft.Sub("Application role " + s.Role + " of the Aurora PostgreSQL cluster of stack ${AWS::StackName}"),
			"KmsKeyId":    cft.Ref(dbKey),
			"GenerateSecretString": generated(cft.Join("",
				`{"username": "`, cft.Sub(s.Role), `", "dbname": "`, cft.Ref("DBName"),
				`", "masterarn": "`, cft.Ref(dbMasterSecret), `"}`)),
			"Tags": mandatoryTags(),
		}).Condition = condBootstrap
		attach(t, s.Logical, condBootstrap)
		denyDelete(t, s.Logical, condBootstrap)
	}
}
