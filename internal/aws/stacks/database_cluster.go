package stacks

import (
	"fmt"
	"strings"

	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/cft"
)

const auroraEngine = "aurora-postgresql"

// logGroupID is the logical id of the log group of one exported log type.
func logGroupID(logType string) string {
	return "Aurora" + strings.ToUpper(logType[:1]) + logType[1:] + "LogGroup"
}

func logGroupIDs() []string {
	var out []string
	for _, lt := range bestpractice.LogExports {
		out = append(out, logGroupID(lt))
	}
	return out
}

func addCluster(t *cft.Template) {
	noValueIfSnapshot := func(v any) any { return cft.If(condSnapshot, cft.NoValue(), v) }
	c := t.AddResource(dbCluster, "AWS::RDS::DBCluster", map[string]any{
		"Engine":                 auroraEngine,
		"EngineVersion":          cft.Ref("DBEngineVersion"),
		"EngineLifecycleSupport": cft.Ref("EngineLifecycleSupport"),
		"DatabaseName":           noValueIfSnapshot(cft.Ref("DBName")),
		"Port":                   cft.Ref("DBPort"),
		// The password is the sample's dynamic reference to the generated secret (whose username
		// is DBUsername); a restored cluster keeps the snapshot's master user.
		"MasterUsername":              noValueIfSnapshot(cft.Ref("DBUsername")),
		"MasterUserPassword":          noValueIfSnapshot(masterSecretField("password")),
		"DBSubnetGroupName":           cft.Ref(dbSubnetGroup),
		"VpcSecurityGroupIds":         []any{cft.Ref(dbSecurityGroup)},
		"DBClusterParameterGroupName": cft.Ref(dbClusterParams),
		"BackupRetentionPeriod":       stage(stageBackupDays),
		"PreferredBackupWindow":       bestpractice.BackupWindow,
		"PreferredMaintenanceWindow":  bestpractice.MaintenanceWindow,
		"DeletionProtection":          stage(stageDeletionProt),
		"SnapshotIdentifier":          cft.If(condSnapshot, cft.Ref("DBSnapshotName"), cft.NoValue()),
		// A restore inherits StorageEncrypted from the snapshot, but KmsKeyId still applies: the
		// restored cluster is encrypted with this stack's key, even from an unencrypted snapshot.
		"StorageEncrypted":                noValueIfSnapshot(true),
		"KmsKeyId":                        cft.GetAtt(dbKey, "Arn"),
		"EnableIAMDatabaseAuthentication": true,
		"EnableCloudwatchLogsExports":     anyList(bestpractice.LogExports),
		"CopyTagsToSnapshot":              true,
		"Tags":                            mandatoryTags(),
	})
	// A final snapshot when the cluster is deleted or replaced.
	c.DeletionPolicy, c.UpdateReplacePolicy = "Snapshot", "Snapshot"

	// The exported logs' groups, made before RDS would make them (without retention or key): a
	// cluster has no logs until its first instance runs, and the instances depend on these. They
	// are retained like the key: audit logs outlive the stack, for their retention period.
	for _, lt := range bestpractice.LogExports {
		g := t.AddResource(logGroupID(lt), "AWS::Logs::LogGroup", map[string]any{
			"LogGroupName":    cft.Sub("/aws/rds/cluster/${" + dbCluster + "}/" + lt),
			"RetentionInDays": cft.Ref("LogsRetentionInDays"),
			"KmsKeyId":        cft.GetAtt(dbKey, "Arn"),
			"Tags":            mandatoryTags(),
		})
		g.DeletionPolicy, g.UpdateReplacePolicy = "Retain", "Retain"
	}
}

func addInstances(t *cft.Template) {
	mon := t.AddResource(dbMonitoringRole, "AWS::IAM::Role", map[string]any{
		"AssumeRolePolicyDocument": iamPolicy(map[string]any{
			"Effect": "Allow", "Principal": map[string]any{"Service": "monitoring.rds.amazonaws.com"},
			"Action":    "sts:AssumeRole",
			"Condition": map[string]any{"StringEquals": map[string]any{"aws:SourceAccount": cft.Ref(cft.AccountId)}}}),
		"Path":              "/",
		"ManagedPolicyArns": []any{cft.Sub(managedPolicyEnhancedMonitoring)},
		"Tags":              mandatoryTags(),
	})
	mon.Condition = condMonitoring

	instance := func(name string, az int, tier int) *cft.Resource {
		return t.AddResource(name, "AWS::RDS::DBInstance", map[string]any{
			"DBClusterIdentifier":                cft.Ref(dbCluster),
			"DBInstanceClass":                    cft.Ref("DBInstanceClass"),
			"Engine":                             auroraEngine,
			"DBParameterGroupName":               cft.Ref(dbInstanceParams),
			"AvailabilityZone":                   cft.Select(az, cft.GetAZs("")),
			"PromotionTier":                      tier,
			"MonitoringInterval":                 stage(stageMonitoring),
			"MonitoringRoleArn":                  cft.If(condMonitoring, cft.GetAtt(dbMonitoringRole, "Arn"), cft.NoValue()),
			"AutoMinorVersionUpgrade":            stage(stageAutoMinor),
			"PubliclyAccessible":                 false,
			"EnablePerformanceInsights":          true,
			"PerformanceInsightsKMSKeyId":        cft.GetAtt(dbKey, "Arn"),
			"PerformanceInsightsRetentionPeriod": stage(stagePIRetention),
			"CopyTagsToSnapshot":                 true,
			"Tags":                               mandatoryTags(),
		})
	}
	w := instance(dbWriter, 0, bestpractice.WriterPromotionTier)
	w.DependsOn = logGroupIDs()
	// Created after the writer, so that the writer is the instance the user named; in the
	// second AZ; promotion tier 0, so that it is the failover target.
	r := instance(dbReader, 1, bestpractice.ReaderPromotionTier)
	r.Condition = condReplica
	r.DependsOn = append([]string{dbWriter}, logGroupIDs()...)
}

// alarmID is the logical id of an alarm for one role: CPUAlarmWriter, CPUAlarmReader.
func alarmID(a bestpractice.Alarm, role string) string {
	return a.Name + "Alarm" + strings.ToUpper(role[:1]) + strings.ToLower(role[1:])
}

// roleInstance is the instance that holds a role when the stack is created.
func roleInstance(role string) string {
	if role == "WRITER" {
		return dbWriter
	}
	return dbReader
}

// addAlarms watches the cluster's WRITER and READER role metrics, which follow a failover. A
// metric that AWS/RDS does not publish per role (RoleDimension false) falls back to the
// instance that holds the role at creation, and says so in its description.
func addAlarms(t *cft.Template, alarms []bestpractice.Alarm) {
	for _, a := range alarms {
		for _, role := range bestpractice.Roles {
			dims := []any{
				map[string]any{"Name": "DBClusterIdentifier", "Value": cft.Ref(dbCluster)},
				map[string]any{"Name": "Role", "Value": role},
			}
			desc := fmt.Sprintf("%s (%s role of the cluster)", a.Description, role)
			if !a.RoleDimension {
				dims = []any{map[string]any{"Name": "DBInstanceIdentifier", "Value": cft.Ref(roleInstance(role))}}
				desc = fmt.Sprintf("%s (instance created as %s: the metric has no role dimension)", a.Description, role)
			}
			r := t.AddResource(alarmID(a, role), "AWS::CloudWatch::Alarm", map[string]any{
				"ActionsEnabled":     true,
				"AlarmActions":       []any{cft.Ref(dbTopic)},
				"OKActions":          []any{cft.Ref(dbTopic)},
				"AlarmDescription":   desc,
				"Dimensions":         dims,
				"MetricName":         a.MetricName,
				"Namespace":          a.Namespace,
				"Statistic":          a.Statistic,
				"Threshold":          a.Threshold,
				"Unit":               a.Unit,
				"ComparisonOperator": a.Comparison,
				"Period":             a.PeriodSeconds,
				"EvaluationPeriods":  a.EvaluationPeriods,
				"TreatMissingData":   a.TreatMissingData,
				"Tags":               mandatoryTags(),
			})
			if role != "WRITER" {
				r.Condition = condReplica
			}
		}
	}
}

// eventSources says, per RDS event source type, which subscription carries it and what it
// watches; the sample's logical ids are kept.
var eventSources = map[string]struct {
	logical string
	ids     func() []any
}{
	bestpractice.SourceCluster: {"DatabaseClusterEventSubscription", func() []any { return []any{cft.Ref(dbCluster)} }},
	bestpractice.SourceInstance: {"DatabaseInstanceEventSubscription", func() []any {
		return []any{cft.Ref(dbWriter), cft.If(condReplica, cft.Ref(dbReader), cft.NoValue())}
	}},
	bestpractice.SourceParameterGroup: {"DBParameterGroupEventSubscription", func() []any { return []any{cft.Ref(dbInstanceParams)} }},
}

func addEventSubscriptions(t *cft.Template) error {
	for _, st := range bestpractice.EventSourceTypes() {
		src, ok := eventSources[st]
		if !ok {
			return fmt.Errorf("event source type %q of the best-practice data has no subscription in the database stack", st)
		}
		t.AddResource(src.logical, "AWS::RDS::EventSubscription", map[string]any{
			"EventCategories": anyList(bestpractice.EventCategories[st]),
			"SnsTopicArn":     cft.Ref(dbTopic),
			"SourceIds":       src.ids(),
			"SourceType":      st,
			"Tags":            mandatoryTags(),
		})
	}
	return nil
}

// The one AWS managed policy, made for exactly this job (see the allow-list test); the bootstrap
// function's network access is a customer-managed policy (database_bootstrap_access.go).
const managedPolicyEnhancedMonitoring = "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"

// Bootstrap function settings: the bootstrap retries authentication with back-off, well within
// the timeout; CloudFormation gives up on the custom resource a little after the function would.
const (
	bootstrapTimeoutSeconds = 300
	bootstrapServiceTimeout = 600
	bootstrapMemoryMB       = 256
	bootstrapConcurrency    = 2
)

func addBootstrap(t *cft.Template) {
	addBootstrapVPCAccess(t)
	secrets := []any{cft.Ref(dbMasterSecret)}
	for _, s := range appSecrets() {
		secrets = append(secrets, cft.Ref(s.Logical))
	}
	t.AddResource(dbBootstrapRole, "AWS::IAM::Role", map[string]any{
		"AssumeRolePolicyDocument": iamPolicy(map[string]any{
			"Effect": "Allow", "Principal": map[string]any{"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}),
		"Path":              "/",
		"ManagedPolicyArns": []any{cft.Ref(dbBootstrapVPCAccess)},
		"Policies": []any{map[string]any{
			"PolicyName": "bootstrap",
			"PolicyDocument": iamPolicy(
				map[string]any{"Sid": "ReadTheDatabaseSecrets", "Effect": "Allow",
					"Action": "secretsmanager:GetSecretValue", "Resource": secrets},
				// The rotation wait (database_rotation.go) reads whether the master's rotation
				// finished.
				map[string]any{"Sid": "WatchTheMasterRotation", "Effect": "Allow",
					"Action": "secretsmanager:DescribeSecret", "Resource": cft.Ref(dbMasterSecret)},
				map[string]any{"Sid": "DecryptThemThroughSecretsManager", "Effect": "Allow",
					"Action": "kms:Decrypt", "Resource": cft.GetAtt(dbKey, "Arn"),
					"Condition": map[string]any{"StringEquals": map[string]any{"kms:ViaService": viaService("secretsmanager")}}},
				map[string]any{"Sid": "DeadLetterToTheTopic", "Effect": "Allow",
					"Action": "sns:Publish", "Resource": cft.Ref(dbTopic)},
				map[string]any{"Sid": "EncryptForTheTopic", "Effect": "Allow",
					"Action": []any{"kms:GenerateDataKey", "kms:Decrypt"}, "Resource": cft.GetAtt(dbKey, "Arn"),
					"Condition": map[string]any{"StringEquals": map[string]any{"kms:ViaService": viaService("sns")}}},
				map[string]any{"Sid": "WriteItsOwnLog", "Effect": "Allow",
					"Action": []any{"logs:CreateLogStream", "logs:PutLogEvents"}, "Resource": cft.GetAtt(dbBootstrapLogs, "Arn")},
			),
		}},
		"Tags": mandatoryTags(),
	}).Condition = condBootstrap

	t.AddResource(dbBootstrapLogs, "AWS::Logs::LogGroup", map[string]any{
		"LogGroupName":    cft.Sub(bootstrapLogGroupName),
		"RetentionInDays": cft.Ref("LogsRetentionInDays"),
		"KmsKeyId":        cft.GetAtt(dbKey, "Arn"),
		"Tags":            mandatoryTags(),
	}).Condition = condBootstrap

	t.AddResource(dbBootstrapFn, "AWS::Lambda::Function", map[string]any{
		"Description":   "Bootstrap the new Aurora PostgreSQL database: extensions, application schema and roles",
		"Code":          map[string]any{"S3Bucket": cft.Ref("LambdaBootStrapS3Bucket"), "S3Key": cft.Ref("LambdaBootStrapS3Key")},
		"Handler":       "bootstrap",
		"Runtime":       "provided.al2023",
		"Architectures": []any{"arm64"},
		"MemorySize":    bootstrapMemoryMB,
		"Timeout":       bootstrapTimeoutSeconds,
		"Role":          cft.GetAtt(dbBootstrapRole, "Arn"),
		"VpcConfig":     map[string]any{"SubnetIds": importPrivateSubnets(), "SecurityGroupIds": []any{importLambdaSG()}},
		"LoggingConfig": map[string]any{"LogGroup": cft.Ref(dbBootstrapLogs)},
		// CloudFormation invokes it asynchronously: an event it could not handle goes to the
		// stack's (encrypted) topic; a few concurrent runs are all a stack ever needs.
		"DeadLetterConfig":             map[string]any{"TargetArn": cft.Ref(dbTopic)},
		"ReservedConcurrentExecutions": bootstrapConcurrency,
		"Tags":                         mandatoryTags(),
	}).Condition = condBootstrap

	props := map[string]any{
		"ServiceToken":    cft.GetAtt(dbBootstrapFn, "Arn"),
		"ServiceTimeout":  bootstrapServiceTimeout,
		"MasterSecretArn": cft.Ref(dbMasterSecret),
		"Host":            cft.GetAtt(dbCluster, "Endpoint.Address"),
		"Port":            cft.GetAtt(dbCluster, "Endpoint.Port"),
		"DBName":          cft.Ref("DBName"),
		"Schema":          cft.Ref("DBSchema"),
		"TolerateFailure": cft.Ref("TolerateBootstrapFailure"),
	}
	// After the writer is up and every secret carries the cluster's connection fields. The
	// reader is not waited for: the bootstrap works on the writer, and the reader's condition
	// differs from the bootstrap's.
	deps := []string{dbWriter, attachmentID(dbMasterSecret)}
	for _, s := range appSecrets() {
		props[s.Property] = cft.Ref(s.Logical)
		deps = append(deps, attachmentID(s.Logical))
	}
	b := t.AddResource(dbBootstrap, dbCustomBootstrap, props)
	b.Condition = condBootstrap
	b.DependsOn = deps
}
