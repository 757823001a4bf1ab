package statedir

import "path/filepath"

// Names of what a twin keeps at the top of its state directory. They are declared once, here:
// the supervisor, the CLI and the bench find every file through Layout, and Remove deletes
// exactly these.
const (
	caBundle       = "ca.pem"
	tlsDir         = "tls"
	secretsDir     = "secrets"
	runDir         = "run"
	logFile        = "supervisor.log"
	stateFile      = "state.json"
	configFile     = "config.json"
	eventsFile     = "events.jsonl"
	instancesDir   = "instances"
	backupDir      = "backup"
	restoreFile    = "restore.json"
	parametersFile = "parameters.json"
	rejoinFile     = "rejoin.json"
)

// owned lists what apgstack itself creates at the top of a state directory. A directory holding
// anything else is not deleted, and is not taken for a twin that predates the marker.
var owned = []string{
	MarkerName, caBundle, tlsDir, secretsDir, runDir, logFile, stateFile, configFile, eventsFile,
	instancesDir, backupDir, restoreFile, parametersFile, rejoinFile,
}

// SnapshotsDirName is the folder beside the state directories that holds their snapshots.
const SnapshotsDirName = ".apgstack-snapshots"

// Layout is where everything of one twin lives under its state directory. The directory itself
// is 0755 so that the server account can reach instances/; what holds keys, secrets or the
// control socket is 0700 and the supervisor's own.
type Layout struct{ Root string }

func (l Layout) path(p ...string) string { return filepath.Join(append([]string{l.Root}, p...)...) }

// CABundle is the CA certificate clients pass as sslrootcert.
func (l Layout) CABundle() string     { return l.path(caBundle) }
func (l Layout) TLSDir() string       { return l.path(tlsDir) }
func (l Layout) SecretsDir() string   { return l.path(secretsDir) }
func (l Layout) RunDir() string       { return l.path(runDir) }
func (l Layout) Socket() string       { return l.path(runDir, "api.sock") }
func (l Layout) PIDFile() string      { return l.path(runDir, "supervisor.pid") }
func (l Layout) LockFile() string     { return l.path(runDir, "supervisor.lock") }
func (l Layout) LogFile() string      { return l.path(logFile) }
func (l Layout) StateFile() string    { return l.path(stateFile) }
func (l Layout) ConfigFile() string   { return l.path(configFile) }
func (l Layout) EventsFile() string   { return l.path(eventsFile) }
func (l Layout) InstancesDir() string { return l.path(instancesDir) }

// InstanceDir is one server's directory (data/, socket, TLS files, startup log).
func (l Layout) InstanceDir(name string) string { return l.path(instancesDir, name) }

// DataDir is one server's data directory.
func (l Layout) DataDir(name string) string { return l.path(instancesDir, name, "data") }

// BackupDir is the twin's pgBackRest repository.
func (l Layout) BackupDir() string { return l.path(backupDir) }

// RestoreFile marks a cluster created by a restore until it has been promoted.
func (l Layout) RestoreFile() string { return l.path(restoreFile) }

// ParametersFile remembers the parameters the instances were last started with, so that a
// change is reported as a parameter group configuration change.
func (l Layout) ParametersFile() string { return l.path(parametersFile) }

// RejoinFile records an old writer that must rejoin as a reader.
func (l Layout) RejoinFile() string { return l.path(rejoinFile) }

// SnapshotDir is where the twin's snapshots live: beside the state directory, shared by every
// twin in the same folder, so that a snapshot outlives `down --delete` and restores into a new
// state directory.
func (l Layout) SnapshotDir() string {
	return filepath.Join(filepath.Dir(filepath.Clean(l.Root)), SnapshotsDirName)
}
