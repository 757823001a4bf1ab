package bestpractice

// AWS Backup, on top of Aurora's continuous backups: a vault encrypted with the stack's key, a
// plan with one daily rule that keeps the stage's retention, the cluster assigned by ARN, and an
// optional copy to a second Region. HIPAA and NIST 800-53 conformance packs check that RDS
// resources are in a backup plan (AWS Config rule rds-in-backup-plan).
const (
	// BackupSchedule is the daily rule's cron expression (UTC): after the cluster's automated
	// backup window (BackupWindow) ends.
	BackupSchedule = "cron(0 5 * * ? *)"
	// BackupStartWindowMinutes and BackupCompletionWindowMinutes bound a job.
	BackupStartWindowMinutes      = 60
	BackupCompletionWindowMinutes = 480
)
