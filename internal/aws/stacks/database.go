package stacks

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/cft"
	"github.com/apgstack/apgstack/internal/bootstrap"
)

// Logical ids. The sample's names are kept where the sample had the resource, so that a stack
// created from the sample sees updates, not replacements, of what carries over.
const (
	dbKey             = "AuroraKMSCMK"
	dbKeyAlias        = "AuroraKMSCMKAlias"
	dbTopic           = "DBSNSTopic"
	dbTopicPolicy     = "DBSNSTopicPolicy"
	dbSubscription    = "DBSNSTopicSubscription"
	dbSubnetGroup     = "DBSubnetGroup"
	dbSecurityGroup   = "ClusterSecurityGroup"
	dbClusterParams   = "RDSDBClusterParameterGroup"
	dbInstanceParams  = "DBParamGroup"
	dbMasterSecret    = MasterSecretID
	dbCluster         = "AuroraDBCluster"
	dbWriter          = "AuroraDBFirstInstance"
	dbReader          = "AuroraDBSecondInstance"
	dbMonitoringRole  = "MonitoringIAMRole"
	dbLogGroup        = "AuroraPostgreSQLLogGroup"
	dbBootstrapRole   = "DBBootStrapLambdaRole"
	dbBootstrapLogs   = "DBBootStrapLambdaLogGroup"
	dbBootstrapFn     = "DBBootStrapLambdaFn"
	dbBootstrap       = "DBBootStrapLambdaFnTrigger"
	dbFamilyMap       = "DBFamilyMap"
	dbStageMap        = "StageSettings"
	dbCustomBootstrap = "Custom::DBBootstrap"
)

// Conditions: the sample's names, plus the ones the per-stage mapping needs.
const (
	condSnapshot   = "IsUseDBSnapshot"
	condNoSnapshot = "IsNotUseDBSnapshot"
	condProd       = "IsProd"
	condReplica    = "IsReplica"
	condBootstrap  = "DoDBBootStrap"
	condMonitoring = "HasEnhancedMonitoring"
)

// appSecret is one application role's secret; the bootstrap creates the role with its password.
type appSecret struct {
	Logical  string // logical id of the secret
	Property string // the bootstrap custom resource's property naming its ARN
	Role     string // the role name, as a Fn::Sub template over DBSchema
}

// appSecrets mirrors bootstrap.RoleNames in the template: applied to the literal "${DBSchema}",
// it yields Fn::Sub templates, so the role names are derived in one place only.
func appSecrets() []appSecret {
	owner, rw, ro := bootstrap.RoleNames("${DBSchema}")
	return []appSecret{
		{OwnerSecretID, "OwnerSecretArn", owner},
		{ReadWriteSecretID, "ReadWriteSecretArn", rw},
		{ReadOnlySecretID, "ReadOnlySecretArn", ro},
	}
}

func buildDatabase(cfg apgstack.Config) (*Stack, error) {
	d := cfg.Database
	params := []Param{
		{"ParentVPCStack", cfg.Network.StackName},
		{"ParentSSHBastionStack", cfg.Bastion.StackName},
		{"DBName", d.Name},
		{"DBPort", strconv.Itoa(d.Port)},
		{"DBUsername", d.Username},
		{ParamEngineVersion, d.EngineVersion},
		{ParamInstanceClass, d.InstanceClass},
		{ParamSnapshot, d.SnapshotName},
		{ParamBootstrapBucket, d.BootstrapS3Bucket},
		{ParamBootstrapKey, d.BootstrapS3Key},
		{"DBSchema", d.SchemaName()},
		{"EngineLifecycleSupport", d.EngineLifecycleSupport},
		{"PgauditLog", d.PgauditLog},
		{"TolerateBootstrapFailure", boolString(d.TolerateBootstrapFailure)},
		{"LogsRetentionInDays", strconv.Itoa(d.LogsRetentionInDays)},
		{"NotificationList", cfg.Environment.NotificationList},
	}
	params = append(append(params, capacityParamValues(d)...), backupParamValues(d)...)
	t, err := databaseTemplate(bestpractice.Alarms)
	if err != nil {
		return nil, err
	}
	return &Stack{
		Kind:       Database,
		Name:       d.StackName,
		Template:   t,
		Parameters: append(params, tagParamValues(cfg)...),
	}, nil
}

// databaseTemplate does not depend on the configuration (the configuration fills parameters);
// the alarms are an argument so that a test can exercise the instance-dimension fallback.
func databaseTemplate(alarms []bestpractice.Alarm) (*cft.Template, error) {
	t := cft.New("Cloudformation Template to create Aurora Postgresql Cluster DB Instance, with a customer-managed KMS key, rotated secrets, parameter groups, alarms, event subscriptions and a bootstrap custom resource")
	// The hosted rotation functions of AWS::SecretsManager::RotationSchedule are expanded by
	// this transform (deploying needs CAPABILITY_AUTO_EXPAND).
	t.Transform = []string{"AWS::SecretsManager-2024-09-16"}
	addDatabaseParameters(t)
	addDatabaseMappings(t)
	addDatabaseConditions(t)
	addKey(t)
	addTopic(t)
	addNetworking(t)
	addParameterGroups(t)
	addSecrets(t)
	addCluster(t)
	keepAppSecretsWithCluster(t)
	addInstances(t)
	addDatabaseInsights(t)
	addAlarms(t, alarms)
	addCapacity(t)
	addBackup(t)
	if err := addEventSubscriptions(t); err != nil {
		return nil, err
	}
	addBootstrap(t)
	addRotation(t)
	addDatabaseOutputs(t)
	return t, nil
}

func anyList[T any](list []T) []any {
	out := make([]any, len(list))
	for i, v := range list {
		out[i] = v
	}
	return out
}

// pgauditPattern admits what configuration validation admits: pgaudit classes, each optionally
// negated, comma-separated, in any case.
func pgauditPattern() string {
	classes := make([]string, len(apgstack.PgauditClasses))
	for i, c := range apgstack.PgauditClasses {
		classes[i] = regexp.QuoteMeta(c)
	}
	one := `\s*-?(` + strings.Join(classes, "|") + `)\s*`
	return `(?i)^` + one + `(,` + one + `)*$`
}

// defaultSchemaParam is DBSchema's default, for stacks updated from the sample's parameters.
const defaultSchemaParam = "app"

func addDatabaseParameters(t *cft.Template) {
	t.AddParameter(stackNameParam("ParentVPCStack", "Provide Stack name of parent VPC stack based on VPC-3AZs yaml template. Refer Cloudformation dashboard in AWS Console to get this."))
	t.AddParameter(stackNameParam("ParentSSHBastionStack", "Provide Stack name of parent Amazon Linux bastion host stack based on VPC-SSH-Bastion yaml template. Refer Cloudformation dashboard in AWS Console to get this."))
	ident := apgstack.IdentifierPattern.String()
	t.AddParameter(&cft.Parameter{Name: "DBName", Type: "String", Description: "Database Name",
		MinLength: cft.Int(1), MaxLength: cft.Int(64), AllowedPattern: ident,
		ConstraintDescription: "Must start with a letter. Only numbers, letters, and _ accepted. max length 64 characters"})
	t.AddParameter(&cft.Parameter{Name: "DBPort", Type: "Number", Default: 5432, Description: "TCP/IP Port for the Database Instance",
		MinValue: cft.Float(1150), MaxValue: cft.Float(65535), ConstraintDescription: "Must be in the range [1150-65535]"})
	t.AddParameter(&cft.Parameter{Name: "DBUsername", Type: "String", Description: "Database master username",
		MinLength: cft.Int(1), MaxLength: cft.Int(16), AllowedPattern: ident,
		ConstraintDescription: "Must start with a letter. Only numbers, letters, and _ accepted. max length 16 characters"})
	t.AddParameter(&cft.Parameter{Name: "DBEngineVersion", Type: "String", Default: apgstack.DefaultEngineVersion,
		Description: "Select Database Engine Version", AllowedValues: anyList(apgstack.EngineVersions)})
	t.AddParameter(&cft.Parameter{Name: "DBInstanceClass", Type: "String", Default: apgstack.DefaultInstanceClass,
		Description: "Database Instance Class", AllowedValues: anyList(apgstack.InstanceClasses)})
	t.AddParameter(&cft.Parameter{Name: "DBSnapshotName", Type: "String", Default: "",
		Description:    "Optional. DB Snapshot ID to restore database. Leave this blank if you are not restoring from a snapshot.",
		AllowedPattern: apgstack.DBSnapshotNamePattern.String(), ConstraintDescription: "empty or a DB cluster snapshot identifier or ARN"})
	t.AddParameter(&cft.Parameter{Name: "LambdaBootStrapS3Bucket", Type: "String", Default: "",
		Description:    "Optional. Specify S3 bucket name for e.g. apgbootstrapscripts where the Lambda DB bootstrap zip (Go, provided.al2023, arm64) is stored.",
		AllowedPattern: apgstack.S3BucketPattern.String(), ConstraintDescription: "empty or an S3 bucket name"})
	t.AddParameter(&cft.Parameter{Name: "LambdaBootStrapS3Key", Type: "String", Default: "",
		Description: "Optional. Specify S3 key for e.g. apgstack/bootstrap-lambda-<sum>.zip where the Lambda DB bootstrap zip is stored."})
	// Role names are <schema>_owner, _rw, _ro and, for the multi-user rotation, <role>_clone:
	// apgstack.MaxSchemaLength keeps them within PostgreSQL's 63-character identifiers.
	// A default, so that a stack created from the sample (which had no DBSchema) updates with its
	// previous parameters; apgstack always passes the configured schema.
	t.AddParameter(&cft.Parameter{Name: "DBSchema", Type: "String", Default: defaultSchemaParam,
		Description: "Application schema the bootstrap creates, with its roles <schema>_owner, <schema>_rw and <schema>_ro and their rotation identities <role>_clone (apgstack passes DBName in lower case unless configured)",
		MinLength:   cft.Int(1), MaxLength: cft.Int(apgstack.MaxSchemaLength), AllowedPattern: ident,
		ConstraintDescription: "Must start with a letter. Only numbers, letters, and _ accepted. max length " + strconv.Itoa(apgstack.MaxSchemaLength) + " characters"})
	t.AddParameter(&cft.Parameter{Name: "EngineLifecycleSupport", Type: "String", Default: apgstack.LifecycleSupports[0],
		Description:   "RDS Extended Support after the major version's end of standard support (paid); disabled by default so that nobody pays for it by surprise",
		AllowedValues: anyList(apgstack.LifecycleSupports)})
	t.AddParameter(&cft.Parameter{Name: "PgauditLog", Type: "String", Default: bestpractice.DefaultPgauditLog,
		Description:    "pgaudit.log: the statement classes pgAudit records (pgAudit records nothing until this is set)",
		AllowedPattern: pgauditPattern(), ConstraintDescription: "comma-separated pgaudit classes: " + strings.Join(apgstack.PgauditClasses, ", ") + ", each optionally prefixed with -"})
	t.AddParameter(&cft.Parameter{Name: "TolerateBootstrapFailure", Type: "String", Default: "false", AllowedValues: []any{"true", "false"},
		Description: "true lets the stack succeed when the database bootstrap fails (the failure is reported in the custom resource's data); false fails the stack"})
	t.AddParameter(logRetentionParam("LogsRetentionInDays", apgstack.Default().Database.LogsRetentionInDays))
	t.AddParameter(emailParam("NotificationList", "The Email notification list is used to configure a SNS topic for sending cloudwatch alarm and RDS Event notifications"))
	addTagParameters(t)
	addCapacityParameters(t)
	addBackupParameters(t)

	t.Group("Environment", "EnvironmentStage")
	t.Group("DB Parameters", "DBName", "DBPort", "DBUsername", "DBInstanceClass", "DBEngineVersion", "DBSnapshotName",
		"NotificationList", "LambdaBootStrapS3Bucket", "LambdaBootStrapS3Key",
		"DBSchema", "EngineLifecycleSupport", "PgauditLog", "TolerateBootstrapFailure", "LogsRetentionInDays")
	t.Group("Networking", "ParentVPCStack", "ParentSSHBastionStack")
	t.Group("Mandatory Tags", bestpractice.MandatoryTags[1:]...)
}

// Keys of the per-stage mapping, one per bestpractice.StageSettings field the template uses.
const (
	stageReader       = "Reader"
	stageBackupDays   = "BackupRetentionPeriod"
	stageMonitoring   = "MonitoringInterval"
	stagePIRetention  = "PerformanceInsightsRetentionPeriod"
	stageAutoMinor    = "AutoMinorVersionUpgrade"
	stageDeletionProt = "DeletionProtection"
)

func addDatabaseMappings(t *cft.Template) {
	families := map[string]map[string]any{}
	for _, v := range apgstack.EngineVersions {
		families[v] = map[string]any{"family": apgstack.EngineFamily(v)}
	}
	t.AddMapping(dbFamilyMap, families)
	stages := map[string]map[string]any{}
	for _, name := range bestpractice.StageNames {
		s := bestpractice.Stage(name)
		stages[name] = map[string]any{
			stageReader:       boolString(s.Reader),
			stageBackupDays:   s.BackupRetentionDays,
			stageMonitoring:   s.MonitoringIntervalSeconds,
			stagePIRetention:  s.PerformanceInsightsRetentionDays,
			stageAutoMinor:    boolString(s.AutoMinorVersionUpgrade),
			stageDeletionProt: boolString(s.DeletionProtection),
		}
	}
	t.AddMapping(dbStageMap, stages)
}

// stage looks up a per-stage setting for the stack's EnvironmentStage.
func stage(key string) any { return cft.FindInMap(dbStageMap, cft.Ref("EnvironmentStage"), key) }

func addDatabaseConditions(t *cft.Template) {
	t.AddCondition(condSnapshot, cft.Not(cft.Equals(cft.Ref("DBSnapshotName"), "")))
	t.AddCondition(condNoSnapshot, cft.Not(cft.Cond(condSnapshot)))
	// IsProd is kept from the sample for templates that extend this one; the per-stage settings
	// come from the StageSettings mapping, so no resource needs it.
	t.AddCondition(condProd, cft.Equals(cft.Ref("EnvironmentStage"), apgstack.StageProd))
	t.AddCondition(condReplica, cft.Equals(stage(stageReader), "true"))
	t.AddCondition(condMonitoring, cft.Not(cft.Equals(stage(stageMonitoring), 0)))
	t.AddCondition(condBootstrap, cft.And(
		cft.Not(cft.Equals(cft.Ref("LambdaBootStrapS3Bucket"), "")),
		cft.Not(cft.Equals(cft.Ref("LambdaBootStrapS3Key"), "")),
		cft.Not(cft.Cond(condSnapshot)),
	))
}

// importPrivateSubnets is the network stack's private subnets as a list.
func importPrivateSubnets() any {
	return cft.Split(",", cft.ImportSub("${ParentVPCStack}-SubnetsPrivate"))
}

// importLambdaSG is the security group the network stack made for in-VPC Lambdas.
func importLambdaSG() any {
	return cft.ImportSub("${ParentVPCStack}-SecretRotationLambdaSecurityGroup")
}

func addDatabaseOutputs(t *cft.Template) {
	t.AddOutput(&cft.Output{Name: OutputClusterEndpoint, Description: "Aurora Cluster/Writer Endpoint", Value: cft.GetAtt(dbCluster, "Endpoint.Address")})
	t.AddOutput(&cft.Output{Name: OutputReaderEndpoint, Description: "Aurora Reader Endpoint", Value: cft.GetAtt(dbCluster, "ReadEndpoint.Address")})
	t.AddOutput(&cft.Output{Name: OutputPort, Description: "Aurora Endpoint Port", Value: cft.GetAtt(dbCluster, "Endpoint.Port")})
	t.AddOutput(&cft.Output{Name: OutputDBUsername, Description: "Database master username", Value: cft.Ref("DBUsername")})
	t.AddOutput(&cft.Output{Name: OutputDBName, Description: "Database Name", Value: cft.Ref("DBName")})
	t.AddOutput(&cft.Output{Name: OutputPSQLCommandLine, Description: "PSQL Command Line", Value: cft.Join("",
		"psql --host=", cft.GetAtt(dbCluster, "Endpoint.Address"),
		" --port=", cft.GetAtt(dbCluster, "Endpoint.Port"),
		" --username=", cft.Ref("DBUsername"),
		" --dbname=", cft.Ref("DBName"))})
	// A cluster restored from a snapshot keeps the snapshot's master credentials: no secret then.
	t.AddOutput(&cft.Output{Name: OutputSecretArn, Description: "ARN of the master user secret (Secrets Manager)",
		Condition: condNoSnapshot, Value: cft.Ref(dbMasterSecret)})
	t.AddOutput(&cft.Output{Name: OutputKmsKeyArn, Description: "ARN of the customer-managed KMS key (storage, Performance Insights, secrets, logs, topic); retained when the stack is deleted",
		Value: cft.GetAtt(dbKey, "Arn")})
}
