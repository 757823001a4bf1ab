package bestpractice

// Additions to the single source that the database stack needed and bestpractice.go did not
// yet hold. Each is typed here once; the CloudFormation builder and the local twin read them.

// LogExports are the PostgreSQL log types exported to CloudWatch Logs (the cluster's
// EnableCloudwatchLogsExports); Aurora PostgreSQL has one, "postgresql".
var LogExports = []string{"postgresql"}

// Promotion tiers: Aurora promotes the replica with the lowest tier on failover. The reader is
// tier 0 and the writer tier 1, so the reader is always the failover target, and after a
// failover the old writer (now a reader, tier 1) does not compete with a later, preferred one.
const (
	WriterPromotionTier = 1
	ReaderPromotionTier = 0
)

// Backup and maintenance windows, UTC, not overlapping: backups run first, maintenance after.
const (
	BackupWindow      = "03:00-04:00"
	MaintenanceWindow = "sun:04:30-sun:05:30"
)
