package supervisor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/internal/atomicfile"
	"github.com/apgstack/apgstack/internal/runas"
	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/instance"
)

// RemoveReaders takes the readers out of a stopped twin, as removing the reader instance from the
// stack does: the writer (which holds every acknowledged write) stays, the readers' data is
// deleted, and the writer no longer waits for a synchronous reader. The readers' replication
// slots go when the writer next starts (dropStraySlots). It returns the readers' names.
func RemoveReaders(cfg apgstack.Config, stateDir string) ([]string, error) {
	l := Layout{Root: stateDir}
	st, ok, err := LoadState(l)
	if err != nil || !ok {
		return nil, err
	}
	var keep []InstanceState
	var removed []string
	for _, in := range st.Instances {
		if in.Role == api.RoleReader {
			if pid := instance.StalePID(l.DataDir(in.Name)); pid != 0 {
				return nil, fmt.Errorf("reader %s still runs (pid %d): stop the twin first", in.Name, pid)
			}
			removed = append(removed, in.Name)
			continue
		}
		keep = append(keep, in)
	}
	if len(removed) == 0 {
		return nil, nil
	}
	acct, err := runas.Resolve(cfg.Target.Local.OSUser)
	if err != nil {
		return nil, err
	}
	for _, in := range keep {
		if err := dropAutoSettings(filepath.Join(l.DataDir(in.Name), "postgresql.auto.conf"), acct, "synchronous_standby_names"); err != nil {
			return nil, err
		}
	}
	st.Instances = keep
	st.Sync = SyncState{}
	// The record first: a crash after it leaves unused folders, never a reader recorded without data.
	if err := atomicfile.WriteJSON(l.StateFile(), st, atomicfile.Mode(0o644)); err != nil {
		return nil, err
	}
	for _, name := range removed {
		if err := os.RemoveAll(l.InstanceDir(name)); err != nil {
			return removed, fmt.Errorf("delete reader %s: %w", name, err)
		}
	}
	return removed, nil
}

// dropStraySlots drops the writer's replication slots that belong to no reader of the twin (a
// reader removed by a stage change), so that they cannot hold WAL back forever.
func (s *Supervisor) dropStraySlots(ctx context.Context, w *instance.Instance) error {
	var readers []string
	for _, in := range s.topo.now().readers() {
		readers = append(readers, in.Name)
	}
	slots, err := w.Slots(ctx)
	if err != nil {
		return err
	}
	for _, sl := range slots {
		if !sl.Physical || sl.Active || slices.Contains(readers, sl.Name) {
			continue
		}
		if err := w.DropSlot(ctx, sl.Name); err != nil {
			return err
		}
		s.log.Info("dropped the replication slot of a removed reader", "slot", sl.Name)
	}
	return nil
}
