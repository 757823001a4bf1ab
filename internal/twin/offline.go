package twin

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/backup"
	"github.com/apgstack/apgstack/internal/twin/secretstore"
	"github.com/apgstack/apgstack/internal/twin/statedir"
	"github.com/apgstack/apgstack/internal/twin/supervisor"
)

// What a command may do with a twin whether its supervisor runs or not: read the event log, the
// backup repository and the snapshots, restore into a new twin. Everything that needs the
// running cluster goes through Client.

// Client is the API client of the supervisor of stateDir: the only way in while it runs.
func Client(stateDir string) *api.Client {
	return api.NewClient(statedir.Layout{Root: stateDir}.Socket())
}

// ErrNoTwin says a state directory holds no twin.
var ErrNoTwin = errors.New("no twin")

// ReadEvents reads the twin's event log, oldest first.
func ReadEvents(stateDir string) ([]api.Event, error) {
	if _, err := os.Stat(stateDir); err != nil {
		return nil, fmt.Errorf("%w in %s (apgstack up creates one)", ErrNoTwin, stateDir)
	}
	return supervisor.ReadEvents(statedir.Layout{Root: stateDir})
}

// Backups describes the twin's backup repository, read directly (the supervisor need not run).
func Backups(ctx context.Context, cfg apgstack.Config, stateDir string) (api.BackupInfo, error) {
	repo, _, err := supervisor.OpenRepo(cfg, stateDir)
	if err != nil {
		return api.BackupInfo{}, err
	}
	return repo.Info(ctx)
}

// RestoreRequest describes a point-in-time restore into a new twin.
type RestoreRequest = supervisor.RestoreRequest

// RestoreToTime creates a new twin's state directory from the source's backups (see
// supervisor.RestoreToTime); the new twin starts with Up.
func RestoreToTime(ctx context.Context, req RestoreRequest) (api.BackupInfo, error) {
	return supervisor.RestoreToTime(ctx, req)
}

// snapshots is the store of the snapshots beside stateDir.
func snapshots(stateDir string) *backup.Snapshots {
	return &backup.Snapshots{Dir: statedir.Layout{Root: stateDir}.SnapshotDir()}
}

// ListSnapshots lists the snapshots beside stateDir, oldest first.
func ListSnapshots(stateDir string) ([]api.Snapshot, error) { return snapshots(stateDir).List() }

// GetSnapshot describes one snapshot beside stateDir.
func GetSnapshot(stateDir, name string) (api.Snapshot, error) { return snapshots(stateDir).Get(name) }

// DeleteSnapshot deletes one snapshot beside stateDir.
func DeleteSnapshot(stateDir, name string) error { return snapshots(stateDir).Delete(name) }

// CheckSnapshotName refuses a name a snapshot cannot have.
func CheckSnapshotName(name string) error { return backup.CheckSnapshotName(name) }

// GeneratePassword makes a password as Secrets Manager's GetRandomPassword would for the secret.
func GeneratePassword() (string, error) { return secretstore.GeneratePassword() }
