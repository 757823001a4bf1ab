package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/internal/atomicfile"
	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/backup"
	"github.com/apgstack/apgstack/internal/twin/instance"
	"github.com/apgstack/apgstack/internal/twin/postgres"
)

// Backups of the twin: WAL archived continuously into a pgBackRest repository in the state
// directory (backup/), a full backup at creation and then weekly, an incremental one daily,
// expiry per the stage's retention; snapshots beside the state directory; a new cluster restored
// to a point in time or from a snapshot (DBSnapshotName).

// Backup schedule: Aurora backs up continuously; here a full backup a week and an incremental
// one a day, in the stack's backup window (bestpractice.BackupWindow, UTC), keep restores short,
// and the archived WAL fills the gaps.
const (
	fullEvery = 7 * 24 * time.Hour
	incrEvery = 24 * time.Hour
)

// operations are the twin's backups, snapshots, metrics, alarms and notifications.
type operations struct {
	repo      *backup.Repo
	snapshots *backup.Snapshots
	restore   *RestoreMarker

	backupMu sync.Mutex // one backup (or snapshot) at a time
	monitoring
}

// parameterGroupID names the local parameter group in events, as the stack names its groups.
func (s *Supervisor) parameterGroupID() string {
	return s.cfg().Database.StackName + "-instance-parameters"
}

// repoConfig is the repository's configuration for the current writer.
func (s *Supervisor) repoConfig(w InstanceState) backup.Config {
	i := s.newInstance(w)
	return backup.Config{Dir: s.layout.BackupDir(), Stanza: s.cfg().Database.StackName, DataDir: i.DataDir(), SocketDir: i.SocketDir(),
		Port: i.Port, User: postgres.Superuser, RetentionDays: bestpractice.Stage(s.cfg().Environment.Stage).BackupRetentionDays}
}

// prepareOperations runs before the writer starts: it sets up the repository and WAL archiving,
// restores the writer's data from DBSnapshotName on first creation, and reports parameter
// changes since the last start.
func (s *Supervisor) prepareOperations(ctx context.Context) error {
	s.ops = &operations{}
	if err := s.prepareNotifications(); err != nil {
		return err
	}
	s.ops.snapshots = &backup.Snapshots{Dir: s.layout.SnapshotDir(), BinDir: s.bin.BinDir, Acct: s.acct}
	repo, err := backup.New(s.repoConfig(s.topo.now().writer()), s.acct, s.log)
	if err != nil {
		return err
	}
	if err := repo.Setup(); err != nil {
		return err
	}
	s.ops.repo = repo
	s.opts.ExtraSettings = append(slices.DeleteFunc(slices.Clone(s.opts.ExtraSettings), func(g postgres.GUC) bool {
		return g.Name == "archive_mode" || g.Name == "archive_command"
	}),
		postgres.GUC{Name: "archive_mode", Value: "on", Why: "continuous WAL archiving into the pgBackRest repository (point-in-time restore)"},
		postgres.GUC{Name: "archive_command", Value: repo.ArchiveCommand()})

	if m, err := readRestoreMarker(s.layout); err != nil {
		return err
	} else if m != nil && !m.Done {
		s.ops.restore = m
	}
	w := s.newInstance(s.topo.now().writer())
	if name := s.cfg().Database.SnapshotName; name != "" && !w.Initialized() && !s.topo.now().state.MasterCreated {
		if err := s.restoreSnapshot(ctx, w, name); err != nil {
			return err
		}
	}
	if s.ops.restore != nil {
		// A restored cluster keeps its data as it was: no bootstrap (as the stack's DBSnapshotName
		// condition says). The master user gets this twin's secret (createMaster alters it).
		if err := s.markBootstrapped(); err != nil {
			return err
		}
	}
	return s.noteParameterChanges()
}

// noteParameterChanges compares the parameters about to be applied with those of the last start
// and records a parameter group configuration change (and one per instance) when they differ.
func (s *Supervisor) noteParameterChanges() error {
	now := map[string]string{}
	t := s.topo.now()
	for _, g := range t.plan.GUCs {
		now[g.Name] = g.Value
	}
	var before map[string]string
	if data, err := os.ReadFile(s.layout.ParametersFile()); err == nil {
		_ = json.Unmarshal(data, &before)
	}
	if before != nil {
		var changes []string
		for k, v := range now {
			if old, ok := before[k]; !ok {
				changes = append(changes, fmt.Sprintf("%s set to %q", k, v))
			} else if old != v {
				changes = append(changes, fmt.Sprintf("%s %q -> %q", k, old, v))
			}
		}
		for k := range before {
			if _, ok := now[k]; !ok {
				changes = append(changes, k+" reset to its default")
			}
		}
		if len(changes) > 0 {
			slices.Sort(changes)
			s.event(api.Event{SourceType: bestpractice.SourceParameterGroup, SourceID: s.parameterGroupID(), Category: "configuration change",
				Message: "parameters changed: " + strings.Join(changes, "; ")})
			for _, in := range t.state.Instances {
				s.event(api.Event{SourceType: bestpractice.SourceInstance, SourceID: in.Name, Category: "configuration change",
					Message: "instance " + in.Name + " restarted with the changed parameters of " + s.parameterGroupID()})
			}
		}
	}
	return atomicfile.WriteJSON(s.layout.ParametersFile(), now, atomicfile.Mode(0o644))
}

// startOperations runs once the cluster serves: the stanza, a first full backup, the backup
// schedule, and monitoring. The returned function stops them.
func (s *Supervisor) startOperations(ctx context.Context) func() {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.backupLoop(ctx)
	}()
	stopMonitoring := s.startMonitoring(ctx)
	return func() {
		cancel()
		wg.Wait()
		stopMonitoring()
	}
}

// scheduleCheck is how often the schedule is looked at: several times within the backup window.
const scheduleCheck = 15 * time.Minute

// windowSlack lets yesterday's backup, taken a little later in the window, count as a day old.
const windowSlack = time.Hour

// inWindow reports whether t falls in a daily UTC window "HH:MM-HH:MM" (the stack's
// PreferredBackupWindow); a malformed window never excludes.
func inWindow(t time.Time, window string) bool {
	from, to, ok := strings.Cut(window, "-")
	if !ok {
		return true
	}
	f, err1 := time.Parse("15:04", from)
	e, err2 := time.Parse("15:04", to)
	if err1 != nil || err2 != nil {
		return true
	}
	u := t.UTC()
	m := u.Hour()*60 + u.Minute()
	fm, em := f.Hour()*60+f.Minute(), e.Hour()*60+e.Minute()
	if fm <= em {
		return m >= fm && m < em
	}
	return m >= fm || m < em // the window crosses midnight
}

// firstBackupDelay lets a twin settle (and short-lived test twins end) before the first full
// backup; WAL is archived from the start, and `apgstack backup` takes one at once.
var firstBackupDelay = time.Minute

// stanzaRetry is the wait between attempts to create the stanza.
var stanzaRetry = 3 * time.Second

// backupLoop creates the stanza at once (archiving needs it), then takes the backups the
// schedule asks for: the first full one after firstBackupDelay, later ones in the backup window.
func (s *Supervisor) backupLoop(ctx context.Context) {
	// Until the stanza exists archive_command fails and WAL piles up in pg_wal, so a failure
	// (a switchover at the same moment, say) is retried until it succeeds.
	for attempt := 0; ; attempt++ {
		err := s.createStanza(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			if attempt > 0 {
				s.event(api.Event{SourceType: bestpractice.SourceCluster, SourceID: s.cfg().Database.StackName, Category: "notification", Message: "backup repository ready"})
			}
			break
		}
		if attempt == 0 {
			s.log.Warn("backup stanza; retrying", "err", err)
			s.event(api.Event{SourceType: bestpractice.SourceCluster, SourceID: s.cfg().Database.StackName, Category: "failure", Message: "backup repository not ready (retrying): " + err.Error()})
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(stanzaRetry):
		}
	}
	select {
	case <-ctx.Done():
		return
	case <-time.After(firstBackupDelay):
	}
	for {
		if err := s.scheduledBackup(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("backup", "err", err)
			s.event(api.Event{SourceType: bestpractice.SourceCluster, SourceID: s.cfg().Database.StackName, Category: "failure", Message: "backup failed: " + err.Error()})
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(scheduleCheck):
		}
	}
}

func (s *Supervisor) createStanza(ctx context.Context) error {
	s.ops.backupMu.Lock()
	defer s.ops.backupMu.Unlock()
	if _, err := s.syncRepo(); err != nil {
		return err
	}
	return s.ops.repo.StanzaCreate(ctx)
}

// syncRepo points the repository's configuration at the current writer (it moves on failover).
func (s *Supervisor) syncRepo() (*instance.Instance, error) {
	w := s.writerInstance()
	if w == nil || !w.Running() {
		return nil, errors.New("the writer is not running")
	}
	ws := s.topo.now().writer()
	repo, err := backup.New(s.repoConfig(ws), s.acct, s.log)
	if err != nil {
		return nil, err
	}
	if err := repo.Setup(); err != nil {
		return nil, err
	}
	s.ops.repo = repo
	return w, nil
}

// scheduledBackup takes a full backup when there is none, or, in the backup window, when the
// last full one is a week old, an incremental one when the last backup is a day old; then
// expires.
func (s *Supervisor) scheduledBackup(ctx context.Context) error {
	s.ops.backupMu.Lock()
	defer s.ops.backupMu.Unlock()
	if _, err := s.syncRepo(); err != nil {
		return err
	}
	repo := s.ops.repo
	if err := repo.StanzaCreate(ctx); err != nil {
		return err
	}
	info, err := repo.Info(ctx)
	if err != nil {
		return err
	}
	var lastFull, last time.Time
	for _, b := range info.Backups {
		if b.Error {
			continue
		}
		if b.Type == backup.Full {
			lastFull = b.Stop
		}
		last = b.Stop
	}
	now := time.Now()
	typ := ""
	switch {
	case lastFull.IsZero():
		typ = backup.Full // the first one at once: point-in-time restore starts from it
	case !inWindow(now, bestpractice.BackupWindow):
		return nil
	case now.Sub(lastFull) >= fullEvery-windowSlack:
		typ = backup.Full
	case now.Sub(last) >= incrEvery-windowSlack:
		typ = backup.Incr
	default:
		return nil
	}
	_, err = s.takeBackupLocked(ctx, typ, "scheduled")
	return err
}

// takeBackupLocked takes a backup and expires old ones; the caller holds backupMu.
func (s *Supervisor) takeBackupLocked(ctx context.Context, typ, why string) (backup.Info, error) {
	if _, err := s.syncRepo(); err != nil {
		return backup.Info{}, err
	}
	repo := s.ops.repo
	if err := repo.StanzaCreate(ctx); err != nil {
		return backup.Info{}, err
	}
	start := time.Now()
	set, err := repo.Take(ctx, typ, map[string]string{"apgstack": why})
	if err != nil {
		return backup.Info{}, err
	}
	done := set.Type
	if set.Promoted(typ) {
		done += " (pgBackRest took a full backup instead of the " + typ + " asked for: there was no full backup to build on)"
	}
	if err := repo.Expire(ctx); err != nil {
		s.log.Warn("expire backups", "err", err)
	}
	info, err := repo.Info(ctx)
	if err != nil {
		return backup.Info{}, err
	}
	// Backups are not an RDS event category of their own: they are cluster notifications.
	s.event(api.Event{SourceType: bestpractice.SourceCluster, SourceID: s.cfg().Database.StackName, Category: "notification",
		Message: fmt.Sprintf("%s backup %s completed in %s (%s)", done, set.Label, time.Since(start).Round(time.Second), why)})
	return info, nil
}

// BackupNow takes a backup on demand (apgstack backup).
func (s *Supervisor) BackupNow(ctx context.Context, typ string) (backup.Info, error) {
	if typ == "" {
		typ = backup.Incr
	}
	s.ops.backupMu.Lock()
	defer s.ops.backupMu.Unlock()
	return s.takeBackupLocked(ctx, typ, "on demand")
}

// ArchiveNow commits a transaction and waits until the WAL holding it is in the repository, so a
// point-in-time restore can reach any moment up to now.
func (s *Supervisor) ArchiveNow(ctx context.Context) error {
	s.ops.backupMu.Lock()
	defer s.ops.backupMu.Unlock()
	w, err := s.syncRepo()
	if err != nil {
		return err
	}
	conn, err := w.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, "SELECT txid_current()")
	conn.Close(ctx)
	if err != nil {
		return fmt.Errorf("archive now: %w", err)
	}
	return s.ops.repo.Check(ctx)
}

// CreateSnapshot takes a snapshot of the writer.
func (s *Supervisor) CreateSnapshot(ctx context.Context, name, kind string) (backup.Snapshot, error) {
	if err := backup.CheckSnapshotName(name); err != nil {
		return backup.Snapshot{}, err
	}
	s.ops.backupMu.Lock()
	defer s.ops.backupMu.Unlock()
	w := s.writerInstance()
	if w == nil || !w.Running() {
		return backup.Snapshot{}, errors.New("snapshot: the writer is not running")
	}
	sn, err := s.ops.snapshots.Create(ctx, backup.Source{SocketDir: w.SocketDir(), Port: w.Port, User: postgres.Superuser},
		backup.Snapshot{Name: name, Kind: kind, Cluster: s.cfg().Database.StackName, ServerMajor: s.bin.Major,
			DBName: s.cfg().Database.Name, Username: s.cfg().Database.Username})
	if err != nil {
		return backup.Snapshot{}, err
	}
	s.event(api.Event{SourceType: bestpractice.SourceCluster, SourceID: s.cfg().Database.StackName, Category: "notification",
		Message: fmt.Sprintf("%s snapshot %s created in %s", kind, name, sn.Dir)})
	return sn, nil
}

// Backups describes the repository: its backups and archived WAL.
func (s *Supervisor) Backups(ctx context.Context) (backup.Info, error) {
	if s.ops == nil || s.ops.repo == nil {
		return backup.Info{}, &api.OperationError{Code: http.StatusServiceUnavailable, Message: "backups are not set up yet"}
	}
	s.ops.backupMu.Lock() // the repository's configuration moves with the writer
	defer s.ops.backupMu.Unlock()
	return s.ops.repo.Info(ctx)
}

// Snapshots lists the twin's snapshots.
func (s *Supervisor) Snapshots(context.Context) ([]backup.Snapshot, error) {
	if s.ops == nil {
		return nil, &api.OperationError{Code: http.StatusServiceUnavailable, Message: "snapshots are not set up yet"}
	}
	return s.ops.snapshots.List()
}
