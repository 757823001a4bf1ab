package apgstack

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"
)

// initTemplate is the annotated apgstack.yaml that `apgstack init` writes. Every field of Config
// appears, with the stack parameter it feeds and what is allowed.
const initTemplate = `# apgstack.yaml — one file for the network, bastion and database stacks and their target.
# Precedence: command-line flags (--set path=value) > APGSTACK_* environment variables
# (e.g. APGSTACK_DATABASE_PORT=5433) > this file > built-in defaults.

# Environment stage and the mandatory tags carried by every taggable resource.
environment:
  stage: {{q .Environment.Stage}}  # EnvironmentStage: {{join .Stages}}
  application: {{q .Environment.Application}}  # Application: letters and spaces
  applicationVersion: {{q .Environment.ApplicationVersion}}  # ApplicationVersion: #.#.#
  projectCostCenter: {{q .Environment.ProjectCostCenter}}  # ProjectCostCenter: letters and digits
  serviceOwnersEmailContact: {{q .Environment.ServiceOwnersEmailContact}}  # ServiceOwnersEmailContact: an e-mail address
  confidentiality: {{q .Environment.Confidentiality}}  # Confidentiality: {{join .Confidentiality}}
  compliance: {{q .Environment.Compliance}}  # Compliance: {{join .Compliance}}
  notificationList: {{q .Environment.NotificationList}}  # NotificationList: alarms and events are mailed here

# network stack (VPC across three Availability Zones).
network:
  stackName: {{q .Network.StackName}}  # exported outputs are named <stackName>-VPC, -SubnetsPrivate, ...
  classB: {{.Network.ClassB}}  # ClassB: the VPC is 10.<classB>.0.0/16, 0..255
  flowLogsRetentionInDays: {{.Network.FlowLogsRetentionInDays}}  # VPC flow log retention, a CloudWatch Logs value

# bastion stack (hardened SSH bastion, Amazon Linux 2023).
bastion:
  stackName: {{q .Bastion.StackName}}
  remoteAccessCIDR: {{q .Bastion.RemoteAccessCIDR}}  # RemoteAccessCIDR: who may SSH in, x.x.x.x/x
  keyPairName: {{q .Bastion.KeyPairName}}  # KeyPairName: an EC2 key pair in the Region
  instanceType: {{q .Bastion.InstanceType}}  # BastionInstanceType: x86 (t3, m7i) or Graviton (t4g, m7g)
  logsRetentionInDays: {{.Bastion.LogsRetentionInDays}}  # LogsRetentionInDays: {{joinInt .Retention}}
  tenancy: {{q .Bastion.Tenancy}}  # BastionTenancy: default or dedicated
  enableBanner: {{.Bastion.EnableBanner}}  # EnableBanner
  banner: {{q .Bastion.Banner}}  # BastionBanner: default, or s3://bucket/key of your banner text
  enableTCPForwarding: {{.Bastion.EnableTCPForwarding}}  # EnableTCPForwarding (needed for ssh -L to the cluster)
  enableX11Forwarding: {{.Bastion.EnableX11Forwarding}}  # EnableX11Forwarding
  altInitScript: {{q .Bastion.AltInitScript}}  # AltInitScript: optional http(s) URL of a script run at boot
  osImageOverride: {{q .Bastion.OSImageOverride}}  # OSImageOverride: optional AMI id instead of the current Amazon Linux 2023

# database stack (Aurora PostgreSQL cluster).
database:
  stackName: {{q .Database.StackName}}
  name: {{q .Database.Name}}  # DBName: a letter, then letters, digits, _ (64 at most)
  port: {{.Database.Port}}  # DBPort: 1150..65535; the local twin's writer endpoint listens here
  username: {{q .Database.Username}}  # DBUsername: master user, 16 characters at most, not a name RDS reserves
  engineVersion: {{q .Database.EngineVersion}}  # DBEngineVersion: {{join .EngineVersions}}
  instanceClass: {{q .Database.InstanceClass}}  # DBInstanceClass: db.t4g.*, db.r6g/r7g/r8g.*, db.r6i/r7i.*, db.x2g.*
  snapshotName: {{q .Database.SnapshotName}}  # DBSnapshotName: restore from this snapshot (no bootstrap then)
  bootstrapS3Bucket: {{q .Database.BootstrapS3Bucket}}  # LambdaBootStrapS3Bucket: where 'apgstack package' uploads the bootstrap Lambda
  bootstrapS3Key: {{q .Database.BootstrapS3Key}}  # LambdaBootStrapS3Key: set with the bucket, or both empty
  tolerateBootstrapFailure: {{.Database.TolerateBootstrapFailure}}  # let the stack succeed when the bootstrap fails
  engineLifecycleSupport: {{q .Database.EngineLifecycleSupport}}  # {{join .Lifecycle}}
  pgauditLog: {{q .Database.PgauditLog}}  # pgaudit.log classes: read, write, function, role, ddl, misc, misc_set, all, none
  schema: {{q .Database.Schema}}  # application schema; empty means the lower-cased DBName
  logsRetentionInDays: {{.Database.LogsRetentionInDays}}  # retention of the exported PostgreSQL log group
  storageType: {{q .Database.StorageType}}  # aurora (Standard) or aurora-iopt1 (I/O-Optimized: pays off when I/O is above ~25 % of the spend)
  capacity: {{q .Database.Capacity}}  # provisioned (instanceClass) or serverless (Aurora Serverless v2, db.serverless)
  minACU: {{.Database.MinACU}}  # serverless minimum, 0..256 in steps of 0.5; 0 pauses an idle dev or test cluster
  maxACU: {{.Database.MaxACU}}  # serverless maximum, 1..256 in steps of 0.5
  awsBackup: {{.Database.AWSBackup}}  # put the cluster in an AWS Backup plan (prod always is)
  backupCopyRegion: {{q .Database.BackupCopyRegion}}  # copy AWS Backup recovery points to this Region; empty: no copy
  backupCopyKmsKeyArn: {{q .Database.BackupCopyKmsKeyArn}}  # KMS key ARN in backupCopyRegion that encrypts the copies

# Where the stacks are realized.
target:
  kind: {{q .Target.Kind}}  # local (a twin on this machine, no AWS account needed) or aws
  aws:
    region: {{q .Target.AWS.Region}}  # empty: the AWS configuration chain decides (AWS_REGION, profile)
    profile: {{q .Target.AWS.Profile}}  # empty: the default profile
  local:
    stateDir: {{q .Target.Local.StateDir}}  # every file of the twin lives here
    readerPort: {{.Target.Local.ReaderPort}}  # reader endpoint port; 0 means database.port + 1
    osUser: {{q .Target.Local.OSUser}}  # account that runs PostgreSQL when apgstack runs as root; empty means postgres
    strictVersion: {{.Target.Local.StrictVersion}}  # refuse to run another PostgreSQL major than engineVersion's
    rotationInterval: {{q .Target.Local.RotationInterval}}  # secret rotation period; empty means 30 days
    smtp: {{q .Target.Local.SMTP}}  # host:port of a mail relay for notifications; empty disables e-mail
    smtpFrom: {{q .Target.Local.SMTPFrom}}  # sender of notifications; empty means apgstack@localhost
    metricsPort: {{.Target.Local.MetricsPort}}  # loopback port of the Prometheus endpoint; 0 picks a free one
    alarmThresholds: {{thresholds .Target.Local.AlarmThresholds}}  # override alarm thresholds for a drill, e.g. {CPU: 50}; alarms: {{join .AlarmNames}}
`

// InitYAML renders the annotated configuration file for cfg.
func InitYAML(cfg Config) ([]byte, error) {
	tpl, err := template.New("init").Funcs(template.FuncMap{
		"q":       func(s string) string { return fmt.Sprintf("%q", s) },
		"join":    func(s []string) string { return strings.Join(s, ", ") },
		"joinInt": func(s []int) string { return joinAny(s) },
		"thresholds": func(m map[string]float64) string {
			parts := make([]string, 0, len(m))
			for _, k := range sortedMapKeys(m) {
				parts = append(parts, fmt.Sprintf("%s: %v", k, m[k]))
			}
			return "{" + strings.Join(parts, ", ") + "}"
		},
	}).Parse(initTemplate)
	if err != nil {
		return nil, fmt.Errorf("init template: %w", err)
	}
	data := struct {
		Config
		Stages, Confidentiality, Compliance, EngineVersions, Lifecycle, AlarmNames []string
		Retention                                                                  []int
	}{cfg, Stages, ConfidentialityValues, ComplianceValues, EngineVersions, LifecycleSupports, AlarmNames, LogRetentionDays}
	var buf bytes.Buffer
	if err := tpl.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("render init template: %w", err)
	}
	return buf.Bytes(), nil
}
