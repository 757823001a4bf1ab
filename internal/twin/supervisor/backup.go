package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/internal/runas"
	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/backup"
	"github.com/apgstack/apgstack/internal/twin/instance"
	"github.com/apgstack/apgstack/internal/twin/postgres"
	"github.com/apgstack/apgstack/internal/twin/statedir"
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
	return s.cfg.Database.StackName + "-instance-parameters"
}

// repoConfig is the repository's configuration for the current writer.
func (s *Supervisor) repoConfig(w InstanceState) backup.Config {
	i := s.newInstance(w)
	return backup.Config{Dir: s.layout.BackupDir(), Stanza: s.cfg.Database.StackName, DataDir: i.DataDir(), SocketDir: i.SocketDir(),
		Port: i.Port, User: postgres.Superuser, RetentionDays: bestpractice.Stage(s.cfg.Environment.Stage).BackupRetentionDays}
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
	repo, err := backup.New(s.repoConfig(s.writerState()), s.acct, s.log)
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
	w := s.newInstance(s.writerState())
	if name := s.cfg.Database.SnapshotName; name != "" && !w.Initialized() && !s.state.MasterCreated {
		if err := s.restoreSnapshot(ctx, w, name); err != nil {
			return err
		}
	}
	if s.ops.restore != nil {
		// A restored cluster keeps its data as it was: no bootstrap (as the stack's DBSnapshotName
		// condition says). The master user gets this twin's secret (createMaster alters it).
		s.state.Bootstrapped = true
	}
	return s.noteParameterChanges()
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
	if err := writeJSONFile(s.layout.RestoreFile(), m, 0o644); err != nil {
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
	if err := writeJSONFile(s.layout.RestoreFile(), m, 0o644); err != nil {
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
	s.event(api.Event{SourceType: bestpractice.SourceCluster, SourceID: s.cfg.Database.StackName, Category: "notification", Message: msg})
	return nil
}

// noteParameterChanges compares the parameters about to be applied with those of the last start
// and records a parameter group configuration change (and one per instance) when they differ.
func (s *Supervisor) noteParameterChanges() error {
	now := map[string]string{}
	for _, g := range s.plan.GUCs {
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
			for _, in := range s.state.Instances {
				s.event(api.Event{SourceType: bestpractice.SourceInstance, SourceID: in.Name, Category: "configuration change",
					Message: "instance " + in.Name + " restarted with the changed parameters of " + s.parameterGroupID()})
			}
		}
	}
	return writeJSONFile(s.layout.ParametersFile(), now, 0o644)
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
				s.event(api.Event{SourceType: bestpractice.SourceCluster, SourceID: s.cfg.Database.StackName, Category: "notification", Message: "backup repository ready"})
			}
			break
		}
		if attempt == 0 {
			s.log.Warn("backup stanza; retrying", "err", err)
			s.event(api.Event{SourceType: bestpractice.SourceCluster, SourceID: s.cfg.Database.StackName, Category: "failure", Message: "backup repository not ready (retrying): " + err.Error()})
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
			s.event(api.Event{SourceType: bestpractice.SourceCluster, SourceID: s.cfg.Database.StackName, Category: "failure", Message: "backup failed: " + err.Error()})
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
	s.mu.Lock()
	ws := s.writerState()
	s.mu.Unlock()
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
	s.event(api.Event{SourceType: bestpractice.SourceCluster, SourceID: s.cfg.Database.StackName, Category: "notification",
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
		backup.Snapshot{Name: name, Kind: kind, Cluster: s.cfg.Database.StackName, ServerMajor: s.bin.Major,
			DBName: s.cfg.Database.Name, Username: s.cfg.Database.Username})
	if err != nil {
		return backup.Snapshot{}, err
	}
	s.event(api.Event{SourceType: bestpractice.SourceCluster, SourceID: s.cfg.Database.StackName, Category: "notification",
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
		if err := writeJSONFile(dst.ConfigFile(), req.TargetConfig, 0o644); err != nil {
			return info, err
		}
	}
	m := RestoreMarker{Kind: "point-in-time", Source: req.Config.Database.StackName + " (" + req.SourceDir + ")", Time: req.Time}
	return info, writeJSONFile(dst.RestoreFile(), m, 0o644)
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
	if err := os.WriteFile(path, []byte(strings.Join(keep, "\n")), 0o600); err != nil {
		return fmt.Errorf("rewrite %s: %w", path, err)
	}
	return acct.Chown(path)
}
