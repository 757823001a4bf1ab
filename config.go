// Package apgstack holds the configuration of an apgstack environment: its types, defaults,
// loading (file, then APGSTACK_* environment, then flags) and validation.
//
// One Config describes the three stacks (network, bastion, database) and the target they are
// realized on: "local" (the default, a twin on this machine) or "aws".
package apgstack

import "github.com/apgstack/apgstack/bestpractice"

// DefaultConfigFile is the file `apgstack init` writes and every command reads.
const DefaultConfigFile = "apgstack.yaml"

// Target kinds.
const (
	TargetLocal = "local"
	TargetAWS   = "aws"
)

// TargetKinds are the values of target.kind (and --target).
var TargetKinds = []string{TargetLocal, TargetAWS}

// Stages, as bestpractice declares them.
const (
	StageDev     = bestpractice.StageDev
	StageTest    = bestpractice.StageTest
	StagePreProd = bestpractice.StagePreProd
	StageProd    = bestpractice.StageProd
)

// Config is the whole of apgstack.yaml.
type Config struct {
	Environment Environment `yaml:"environment" json:"environment"`
	Network     Network     `yaml:"network" json:"network"`
	Bastion     Bastion     `yaml:"bastion" json:"bastion"`
	Database    Database    `yaml:"database" json:"database"`
	Target      Target      `yaml:"target" json:"target"`
}

// Environment holds the stage and the mandatory tags that every taggable resource carries.
type Environment struct {
	// Stage is EnvironmentStage: dev, test, pre-prod or prod.
	Stage                     string `yaml:"stage" json:"stage"`
	Application               string `yaml:"application" json:"application"`
	ApplicationVersion        string `yaml:"applicationVersion" json:"applicationVersion"`
	ProjectCostCenter         string `yaml:"projectCostCenter" json:"projectCostCenter"`
	ServiceOwnersEmailContact string `yaml:"serviceOwnersEmailContact" json:"serviceOwnersEmailContact"`
	Confidentiality           string `yaml:"confidentiality" json:"confidentiality"`
	Compliance                string `yaml:"compliance" json:"compliance"`
	// NotificationList receives alarm and event notifications (SNS e-mail subscription on AWS,
	// SMTP locally when an SMTP server is configured).
	NotificationList string `yaml:"notificationList" json:"notificationList"`
}

// Network is the VPC-3AZs stack.
type Network struct {
	StackName string `yaml:"stackName" json:"stackName"`
	// ClassB is the VPC's second octet: 10.ClassB.0.0/16.
	ClassB int `yaml:"classB" json:"classB"`
	// FlowLogsRetentionInDays is the retention of the VPC flow log group.
	FlowLogsRetentionInDays int `yaml:"flowLogsRetentionInDays" json:"flowLogsRetentionInDays"`
}

// Bastion is the VPC-SSH-Bastion stack.
type Bastion struct {
	StackName           string `yaml:"stackName" json:"stackName"`
	RemoteAccessCIDR    string `yaml:"remoteAccessCIDR" json:"remoteAccessCIDR"`
	KeyPairName         string `yaml:"keyPairName" json:"keyPairName"`
	InstanceType        string `yaml:"instanceType" json:"instanceType"`
	LogsRetentionInDays int    `yaml:"logsRetentionInDays" json:"logsRetentionInDays"`
	Tenancy             string `yaml:"tenancy" json:"tenancy"`
	EnableBanner        bool   `yaml:"enableBanner" json:"enableBanner"`
	// Banner is "default" or an s3:// location of the banner text.
	Banner              string `yaml:"banner" json:"banner"`
	EnableTCPForwarding bool   `yaml:"enableTCPForwarding" json:"enableTCPForwarding"`
	EnableX11Forwarding bool   `yaml:"enableX11Forwarding" json:"enableX11Forwarding"`
	AltInitScript       string `yaml:"altInitScript" json:"altInitScript"`
	OSImageOverride     string `yaml:"osImageOverride" json:"osImageOverride"`
}

// Database is the Aurora-Postgres-DB-Cluster stack.
type Database struct {
	StackName     string `yaml:"stackName" json:"stackName"`
	Name          string `yaml:"name" json:"name"`         // DBName
	Port          int    `yaml:"port" json:"port"`         // DBPort
	Username      string `yaml:"username" json:"username"` // DBUsername
	EngineVersion string `yaml:"engineVersion" json:"engineVersion"`
	InstanceClass string `yaml:"instanceClass" json:"instanceClass"`
	// SnapshotName (DBSnapshotName) restores the cluster from a snapshot; no bootstrap then.
	SnapshotName string `yaml:"snapshotName" json:"snapshotName"`
	// BootstrapS3Bucket and BootstrapS3Key locate the bootstrap Lambda's zip on AWS.
	BootstrapS3Bucket string `yaml:"bootstrapS3Bucket" json:"bootstrapS3Bucket"`
	BootstrapS3Key    string `yaml:"bootstrapS3Key" json:"bootstrapS3Key"`
	// TolerateBootstrapFailure lets the stack succeed when the bootstrap fails.
	TolerateBootstrapFailure bool `yaml:"tolerateBootstrapFailure" json:"tolerateBootstrapFailure"`
	// EngineLifecycleSupport: open-source-rds-extended-support or
	// open-source-rds-extended-support-disabled (the default: no paid Extended Support).
	EngineLifecycleSupport string `yaml:"engineLifecycleSupport" json:"engineLifecycleSupport"`
	// PgauditLog is pgaudit.log; "ddl,role" records something useful without flooding the log.
	PgauditLog string `yaml:"pgauditLog" json:"pgauditLog"`
	// Schema is the application schema the bootstrap creates; empty means derived from Name.
	Schema string `yaml:"schema" json:"schema"`
	// LogsRetentionInDays is the retention of the exported PostgreSQL log group.
	LogsRetentionInDays int `yaml:"logsRetentionInDays" json:"logsRetentionInDays"`

	// StorageType is aurora (Standard) or aurora-iopt1 (I/O-Optimized).
	StorageType string `yaml:"storageType" json:"storageType"`
	// Capacity is provisioned (instances of InstanceClass) or serverless (Aurora Serverless v2
	// between MinACU and MaxACU; a minimum of 0 pauses an idle dev or test cluster).
	Capacity string  `yaml:"capacity" json:"capacity"`
	MinACU   float64 `yaml:"minACU" json:"minACU"`
	MaxACU   float64 `yaml:"maxACU" json:"maxACU"`
	// AWSBackup puts the cluster in an AWS Backup plan; prod always is.
	AWSBackup bool `yaml:"awsBackup" json:"awsBackup"`
	// BackupCopyRegion copies every AWS Backup recovery point to a vault in a second Region,
	// encrypted with BackupCopyKmsKeyArn, a KMS key of that Region.
	BackupCopyRegion    string `yaml:"backupCopyRegion" json:"backupCopyRegion"`
	BackupCopyKmsKeyArn string `yaml:"backupCopyKmsKeyArn" json:"backupCopyKmsKeyArn"`
}

// Target says where the database stack is realized.
type Target struct {
	// Kind is "local" (default) or "aws".
	Kind  string      `yaml:"kind" json:"kind"`
	AWS   AWSTarget   `yaml:"aws" json:"aws"`
	Local LocalTarget `yaml:"local" json:"local"`
}

// AWSTarget selects the account and Region.
type AWSTarget struct {
	Region  string `yaml:"region" json:"region"`
	Profile string `yaml:"profile" json:"profile"`
}

// LocalTarget configures the local twin.
type LocalTarget struct {
	// StateDir holds every file of the twin; relative paths are taken from the working directory.
	StateDir string `yaml:"stateDir" json:"stateDir"`
	// ReaderPort is the reader endpoint's port; 0 means DBPort+1.
	ReaderPort int `yaml:"readerPort" json:"readerPort"`
	// OSUser runs the PostgreSQL servers when apgstack runs as root (PostgreSQL refuses root).
	OSUser string `yaml:"osUser" json:"osUser"`
	// StrictVersion refuses to run on a PostgreSQL major other than the engine version's.
	StrictVersion bool `yaml:"strictVersion" json:"strictVersion"`
	// RotationInterval overrides the rotation period of the best-practice data (Go duration,
	// e.g. "30s" in tests); empty means the 30 days of the database stack.
	RotationInterval string `yaml:"rotationInterval" json:"rotationInterval"`
	// SMTP is host:port of a mail relay for notifications; empty disables e-mail.
	SMTP string `yaml:"smtp" json:"smtp"`
	// SMTPFrom is the notifications' sender; empty means apgstack@localhost.
	SMTPFrom string `yaml:"smtpFrom" json:"smtpFrom"`
	// MetricsPort is the loopback port of the Prometheus endpoint; 0 picks a free one.
	MetricsPort int `yaml:"metricsPort" json:"metricsPort"`
	// AlarmThresholds overrides alarm thresholds by alarm name (CPU, MaxUsedTxIDs,
	// FreeLocalStorage), e.g. to drive an alarm in a drill; empty keeps the best-practice ones.
	AlarmThresholds map[string]float64 `yaml:"alarmThresholds" json:"alarmThresholds,omitempty"`
}

// Default returns the configuration `apgstack init` writes: the original templates' defaults,
// and example values where the originals have none.
func Default() Config {
	return Config{
		Environment: Environment{
			Stage:                     StageDev,
			Application:               "Aurora Demo",
			ApplicationVersion:        "1.0.0",
			ProjectCostCenter:         "CC1234",
			ServiceOwnersEmailContact: "dba@example.com",
			Confidentiality:           "confidential",
			Compliance:                "none",
			NotificationList:          "dba@example.com",
		},
		Network: Network{
			StackName:               "apgstack-network",
			ClassB:                  0,
			FlowLogsRetentionInDays: 14,
		},
		Bastion: Bastion{
			StackName:           "apgstack-bastion",
			RemoteAccessCIDR:    "203.0.113.0/24",
			KeyPairName:         "apgstack",
			InstanceType:        DefaultBastionInstanceType,
			LogsRetentionInDays: 14,
			Tenancy:             "default",
			EnableBanner:        true,
			Banner:              "default",
		},
		Database: Database{
			StackName:              "apgstack-database",
			Name:                   "AuroraPostgresDB",
			Port:                   5432,
			Username:               "pgadmin",
			EngineVersion:          DefaultEngineVersion,
			InstanceClass:          DefaultInstanceClass,
			EngineLifecycleSupport: "open-source-rds-extended-support-disabled",
			PgauditLog:             "ddl,role",
			LogsRetentionInDays:    30,
			StorageType:            bestpractice.DefaultStorageType,
			Capacity:               bestpractice.CapacityProvisioned,
			MinACU:                 bestpractice.DefaultMinACU,
			MaxACU:                 bestpractice.DefaultMaxACU,
		},
		Target: Target{
			Kind:  TargetLocal,
			Local: LocalTarget{StateDir: ".apgstack"},
		},
	}
}
