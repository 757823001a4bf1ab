package stacks

import "github.com/apgstack/apgstack/bestpractice"

// The names other packages look up in the stacks — outputs, parameters and logical ids — are
// declared here once: the builders and the deploy code use these constants, so renaming one
// cannot leave a reader behind.

// Outputs read by the deploy code (connect, summary, rotation).
const (
	OutputClusterEndpoint = "ClusterEndpoint"
	OutputReaderEndpoint  = "ReaderEndpoint"
	OutputPort            = "Port"
	OutputDBUsername      = "DBUsername"
	OutputDBName          = "DBName"
	OutputPSQLCommandLine = "PSQLCommandLine"
	// OutputSecretArn names the master user's secret (absent when restored from a snapshot).
	OutputSecretArn = "SecretArn"
	OutputKmsKeyArn = "KmsKeyArn"
	// OutputSSHCommand is the bastion stack's command line to reach the bastion.
	OutputSSHCommand = "SSHCommand"
)

// Database stack parameters the deploy code sets or reads.
const (
	ParamBootstrapBucket = "LambdaBootStrapS3Bucket"
	ParamBootstrapKey    = "LambdaBootStrapS3Key"
	ParamSnapshot        = "DBSnapshotName"
	ParamEngineVersion   = "DBEngineVersion"
	ParamInstanceClass   = "DBInstanceClass"
)

// Logical ids of the database stack's secrets. The master's keeps the sample's name.
const (
	MasterSecretID    = "AuroraMasterSecret"
	OwnerSecretID     = "AppOwnerSecret"
	ReadWriteSecretID = "AppReadWriteSecret"
	ReadOnlySecretID  = "AppReadOnlySecret"
)

// Roles whose secrets the database stack holds, as `rotate-secret` names them.
const (
	RoleMaster    = bestpractice.RoleMaster
	RoleOwner     = bestpractice.RoleOwner
	RoleReadWrite = bestpractice.RoleReadWrite
	RoleReadOnly  = bestpractice.RoleReadOnly
)

// SecretRole ties a role to the logical id of its secret.
type SecretRole struct{ Role, LogicalID string }

// SecretRoles lists the database stack's secrets, master first (the order rotation asks them in).
func SecretRoles() []SecretRole {
	return []SecretRole{
		{RoleMaster, MasterSecretID},
		{RoleOwner, OwnerSecretID},
		{RoleReadWrite, ReadWriteSecretID},
		{RoleReadOnly, ReadOnlySecretID},
	}
}
