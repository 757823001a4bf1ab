package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/internal/atomicfile"
	"github.com/apgstack/apgstack/internal/runas"
	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/backup"
	"github.com/apgstack/apgstack/internal/twin/instance"
	"github.com/apgstack/apgstack/internal/twin/postgres"
	"github.com/apgstack/apgstack/internal/twin/statedir"
)

// Restores: a new twin created from this one's backups to a moment (RestoreToTime, offline, the
// source untouched), a twin created from a snapshot (DBSnapshotName), and the first start of a
// restored twin, which finishes recovery and promotes (awaitRestored).

// restoreWALDir holds, in a restored writer's instance directory, the WAL its recovery replays.
const restoreWALDir = "restore-wal"

// RestoreMarker says how a cluster was created from existing data.
type RestoreMarker struct {
	Kind     string    `json:"kind"` // point-in-time or snapshot
	Source   string    `json:"source"`
	Time     time.Time `json:"time,omitzero"`
	Snapshot string    `json:"snapshot,omitempty"`
	Done     bool      `json:"done"`
}

func (s *Supervisor) restoreSnapshot(ctx context.Context, w *instance.Instance, name string) error {
	sn, err := s.ops.snapshots.Get(name)
	if err != nil {
		return fmt.Errorf("database.snapshotName %q: %w (snapshots are in %s; `apgstack snapshot list` shows them)", name, err, s.ops.snapshots.Dir)
	}
	if sn.ServerMajor != 0 && sn.ServerMajor != s.bin.Major {
		return fmt.Errorf("database.snapshotName %q: the snapshot holds PostgreSQL %d data, the server here is PostgreSQL %d", name, sn.ServerMajor, s.bin.Major)
	}
	if err := w.Prepare(); err != nil {
		return err
	}
	s.progress("restoring the writer %s from snapshot %s (taken %s of %s)", w.Name, name, sn.Created.Format(time.RFC3339), sn.Cluster)
	if err := s.ops.snapshots.Restore(ctx, name, w.DataDir()); err != nil {
		return err
	}
	m := &RestoreMarker{Kind: "snapshot", Source: sn.Cluster, Snapshot: name, Time: sn.Created}
	if err := atomicfile.WriteJSON(s.layout.RestoreFile(), m, atomicfile.Mode(0o644)); err != nil {
		return err
	}
	s.ops.restore = m
	return nil
}

func readRestoreMarker(l Layout) (*RestoreMarker, error) {
	data, err := os.ReadFile(l.RestoreFile())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", l.RestoreFile(), err)
	}
	var m RestoreMarker
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s is damaged: %w", l.RestoreFile(), err)
	}
	return &m, nil
}

// awaitRestored waits, for a cluster created by a restore, until the writer has recovered to
// its target and been promoted, and records the event.
func (s *Supervisor) awaitRestored(ctx context.Context, w *instance.Instance) error {
	m := s.ops.restore
	if m == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.StartTimeout)
	defer cancel()
	for {
		h, err := w.Health(ctx)
		if err == nil && !h.InRecovery {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("restored writer %s did not finish recovery: %w (last: %v)", w.Name, ctx.Err(), err)
		case <-w.Done():
			return fmt.Errorf("restored writer %s stopped during recovery (is the target time within the backups' window?)", w.Name)
		case <-time.After(200 * time.Millisecond):
		}
	}
	m.Done = true
	if err := atomicfile.WriteJSON(s.layout.RestoreFile(), m, atomicfile.Mode(0o644)); err != nil {
		return err
	}
	// The WAL copied for recovery is spent: the cluster archives into its own repository now.
	if err := os.RemoveAll(filepath.Join(w.Dir, restoreWALDir)); err != nil {
		s.log.Warn("remove the restore's WAL copy", "err", err)
	}
	msg := "cluster restored from snapshot " + m.Snapshot + " of " + m.Source
	if m.Kind != "snapshot" {
		msg = "cluster restored from " + m.Source + " to the end of its archived WAL"
		if !m.Time.IsZero() {
			msg = "cluster restored from " + m.Source + " to " + m.Time.UTC().Format(time.RFC3339Nano)
		}
	}
	s.event(api.Event{SourceType: bestpractice.SourceCluster, SourceID: s.cfg().Database.StackName, Category: "notification", Message: msg})
	return nil
}

// OpenRepo opens the backup repository of the twin in stateDir, whether its supervisor runs or
// not (listing backups, restoring).
func OpenRepo(cfg apgstack.Config, stateDir string) (*backup.Repo, *runas.Account, error) {
	l := Layout{Root: stateDir}
	st, ok, err := LoadState(l)
	if err != nil {
		return nil, nil, err
	}
	if !ok || len(st.Instances) == 0 {
		return nil, nil, fmt.Errorf("no local twin in %s", stateDir)
	}
	if _, err := os.Stat(l.BackupDir()); err != nil {
		return nil, nil, fmt.Errorf("the twin in %s has no backup repository: %w", stateDir, err)
	}
	acct, err := runas.Resolve(cfg.Target.Local.OSUser)
	if err != nil {
		return nil, nil, err
	}
	writer := st.Instances[0]
	for _, in := range st.Instances {
		if in.Role == api.RoleWriter {
			writer = in
		}
	}
	wdir := l.InstanceDir(writer.Name)
	repo, err := backup.New(backup.Config{Dir: l.BackupDir(), Stanza: cfg.Database.StackName, DataDir: filepath.Join(wdir, "data"),
		SocketDir: wdir, Port: writer.Port, User: postgres.Superuser, RetentionDays: bestpractice.Stage(cfg.Environment.Stage).BackupRetentionDays}, acct, nil)
	return repo, acct, err
}

// RestoreRequest describes a point-in-time restore into a new twin.
type RestoreRequest struct {
	// Config is the source twin's configuration; SourceDir its state directory.
	Config    apgstack.Config
	SourceDir string
	// TargetDir is the new twin's state directory; it must not exist or be empty. TargetConfig,
	// when set, is the new twin's configuration, recorded there as its identity.
	TargetDir    string
	TargetConfig *apgstack.Config
	// Time is the moment to restore to; zero restores to the end of the archived WAL.
	Time time.Time
}

// RestoreToTime creates a new twin's state directory holding the source's data as it was at
// Time, read from the source's repository (the source itself is not touched and may run). The
// new twin's supervisor then finishes recovery, promotes and takes over (awaitRestored).
func RestoreToTime(ctx context.Context, req RestoreRequest) (backup.Info, error) {
	if err := statedir.CheckClaimable(req.TargetDir); err != nil {
		return backup.Info{}, err
	}
	if statedir.Has(req.TargetDir) {
		return backup.Info{}, fmt.Errorf("state directory %s for the restored cluster already holds a twin: %w", req.TargetDir, statedir.ErrRefused)
	}
	repo, acct, err := OpenRepo(req.Config, req.SourceDir)
	if err != nil {
		return backup.Info{}, err
	}
	info, err := repo.Info(ctx)
	if err != nil {
		return backup.Info{}, err
	}
	earliest := info.EarliestRestorable()
	if earliest.IsZero() {
		return info, fmt.Errorf("the twin in %s has no backup yet: take one with `apgstack backup`", req.SourceDir)
	}
	if !req.Time.IsZero() && (req.Time.Before(earliest) || req.Time.After(time.Now())) {
		return info, fmt.Errorf("--to-time %s: outside the restorable window %s .. now", req.Time.UTC().Format(time.RFC3339), earliest.Format(time.RFC3339))
	}
	dst := Layout{Root: req.TargetDir}
	if err := statedir.Claim(dst.Root); err != nil {
		return info, err
	}
	for _, d := range []string{dst.Root, dst.InstancesDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return info, fmt.Errorf("create %s: %w", d, err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			return info, err
		}
	}
	wi := &instance.Instance{Name: firstInstance, Dir: dst.InstanceDir(firstInstance), Acct: acct}
	if err := acct.MkdirAll(wi.Dir, 0o700); err != nil {
		return info, err
	}
	if err := repo.Restore(ctx, backup.RestoreOptions{DataDir: wi.DataDir(), Time: req.Time}); err != nil {
		return info, err
	}
	// The restored cluster must not depend on the source: the WAL its recovery may replay is
	// copied beside its data, and recovery reads it there, so deleting the source, its state
	// directory or its repository never breaks it, whenever it starts.
	set, _ := info.SetFor(req.Time)
	walDir := filepath.Join(wi.Dir, restoreWALDir)
	if _, err := repo.CopyWAL(ctx, set.WALStart, walDir); err != nil {
		return info, err
	}
	// The source's ALTER SYSTEM settings came along; a synchronous standby name would make the
	// restored writer wait forever for a reader it does not have.
	restoreCommand := "restore_command = " + postgres.Quote(backup.LocalRestoreCommand(walDir))
	if err := rewriteAutoSettings(filepath.Join(wi.DataDir(), "postgresql.auto.conf"), acct, []string{restoreCommand},
		"synchronous_standby_names", "restore_command"); err != nil {
		return info, err
	}
	if req.TargetConfig != nil {
		if err := atomicfile.WriteJSON(dst.ConfigFile(), req.TargetConfig, atomicfile.Mode(0o644)); err != nil {
			return info, err
		}
	}
	m := RestoreMarker{Kind: "point-in-time", Source: req.Config.Database.StackName + " (" + req.SourceDir + ")", Time: req.Time}
	return info, atomicfile.WriteJSON(dst.RestoreFile(), m, atomicfile.Mode(0o644))
}

// dropAutoSettings removes settings from a postgresql.auto.conf, keeping the rest (pgBackRest's
// recovery settings).
func dropAutoSettings(path string, acct *runas.Account, names ...string) error {
	return rewriteAutoSettings(path, acct, nil, names...)
}

// rewriteAutoSettings removes the settings names from a postgresql.auto.conf and appends extra
// lines (name = 'value').
func rewriteAutoSettings(path string, acct *runas.Account, extra []string, names ...string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var keep []string
	for _, line := range strings.Split(string(data), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), "=")
		if slices.Contains(names, strings.TrimSpace(name)) {
			continue
		}
		keep = append(keep, line)
	}
	for len(keep) > 0 && strings.TrimSpace(keep[len(keep)-1]) == "" {
		keep = keep[:len(keep)-1]
	}
	keep = append(append(keep, extra...), "")
	if err := acct.WriteFile(path, []byte(strings.Join(keep, "\n")), 0o600); err != nil {
		return fmt.Errorf("rewrite %s: %w", path, err)
	}
	return nil
}
