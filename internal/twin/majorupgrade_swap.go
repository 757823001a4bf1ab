package twin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/apgstack/apgstack/internal/atomicfile"
	"github.com/apgstack/apgstack/internal/runas"
	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/instance"
	"github.com/apgstack/apgstack/internal/twin/statedir"
	"github.com/apgstack/apgstack/internal/twin/supervisor"
)

// The upgrade survives a crash at any point. In the writer's instance directory:
//
//	upgrade/           the new cluster being made (initdb, pg_upgrade): deleted on a new attempt
//	upgraded/data      the complete new cluster, upgraded/new-system-id its identity
//	data               the old cluster until exchanged with upgraded/data in one step
//	                   (renameat2 RENAME_EXCHANGE), the new one after
//	data.pre-upgrade-N the old cluster, kept
//
// The readers' data directories are set aside before the exchange, so a reader never starts on
// the old cluster's data beside an upgraded writer. Resuming: with upgraded/ present, a writer
// data directory of the recorded identity means the exchange happened (the rest is finished);
// otherwise the old cluster is still the twin's and may have run since (its upgraded copy would
// be stale), so upgraded/ is discarded and the upgrade made again, unless pg_upgrade --link
// disabled the old cluster (then forward is the only way).

const (
	workDirName     = "upgrade"
	upgradedDirName = "upgraded"
	newIDFile       = "new-system-id"
	swapOldName     = "old" // upgraded/old: the old cluster while the exchange is done by two renames
)

var errStopped = errors.New("stopped as a test crash")

// UpgradeData runs the upgrade on the stopped twin, or finishes one a crash interrupted:
// pg_upgrade --check, then pg_upgrade of the writer into a new data directory (initdb by the new
// major), its configuration carried over, the readers' data set aside so that the next start
// recreates them from the upgraded writer by base backup, the new directory put in place and the
// old one kept, and the backup repository told of the new cluster (pgbackrest stanza-upgrade).
func UpgradeData(ctx context.Context, o MajorUpgrade) (MajorResult, error) {
	if _, err := Running(ctx, o.StateDir); err == nil {
		return MajorResult{}, fmt.Errorf("the twin in %s is running: stop it first (apgstack upgrade does)", o.StateDir)
	}
	acct, err := runas.Resolve(o.Config.Target.Local.OSUser)
	if err != nil {
		return MajorResult{}, err
	}
	if res, resumed, err := ResumeMajorUpgrade(ctx, o); resumed || err != nil {
		return res, err
	}
	var p MajorPlan
	if o.Plan != nil {
		p = *o.Plan
	} else if p, err = PlanMajorUpgrade(ctx, o.StateDir, o.Config); err != nil {
		return MajorResult{}, err
	}
	if p.old.BinDir == "" || p.next.BinDir == "" {
		if p.old, _, err = instance.FindBinaries(ctx, p.From, true); err != nil {
			return MajorResult{}, notInstalled(p.From, "pg_upgrade reads the old data with it", err)
		}
		if p.next, _, err = instance.FindBinaries(ctx, p.To, true); err != nil {
			return MajorResult{}, notInstalled(p.To, "the upgrade needs its server", err)
		}
	}
	l := statedir.Layout{Root: o.StateDir}
	wdir := l.InstanceDir(p.Writer)
	work := &instance.Instance{Name: p.Writer + "-upgrade", Dir: filepath.Join(wdir, workDirName), Bin: p.next, Acct: acct}
	if err := os.RemoveAll(work.Dir); err != nil {
		return MajorResult{}, fmt.Errorf("remove the leftover %s: %w", work.Dir, err)
	}
	if err := work.Prepare(); err != nil {
		return MajorResult{}, err
	}
	o.progress("creating the new PostgreSQL %d data directory for the writer %s (initdb)", p.To, p.Writer)
	if err := work.InitDB(ctx); err != nil {
		return MajorResult{}, err
	}
	oldData := l.DataDir(p.Writer)
	for _, check := range []bool{true, false} {
		if check {
			o.progress("checking the clusters (pg_upgrade --check)")
		} else {
			o.progress("upgrading the writer %s's data from PostgreSQL %d to %d (pg_upgrade, %s)", p.Writer, p.From, p.To,
				map[bool]string{true: "hard-linking the files", false: "copying the files"}[o.Link])
		}
		if err := pgUpgrade(ctx, acct, p, oldData, work, o.Link, check); err != nil {
			return MajorResult{}, fmt.Errorf("%w; nothing was changed: the twin's data is as it was (apgstack up starts it)", err)
		}
	}
	// The configuration the supervisor wrote and the settings made with ALTER SYSTEM go along;
	// the supervisor renders postgresql.conf, pg_hba.conf and pg_ident.conf again at start.
	for _, name := range []string{"postgresql.conf", "pg_hba.conf", "pg_ident.conf", "postgresql.auto.conf"} {
		data, err := os.ReadFile(filepath.Join(oldData, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			return MajorResult{}, fmt.Errorf("carry %s over: %w", name, err)
		}
		if err := work.WriteFile(name, data); err != nil {
			return MajorResult{}, fmt.Errorf("carry %s over: %w", name, err)
		}
	}
	if o.stopAfter == "pg_upgrade" {
		return MajorResult{}, errStopped
	}
	id, err := systemID(ctx, acct, p.next, work.DataDir())
	if err != nil {
		return MajorResult{}, err
	}
	if err := atomicfile.Write(filepath.Join(work.Dir, newIDFile), []byte(id+"\n"), atomicfile.Mode(0o600)); err != nil {
		return MajorResult{}, err
	}
	if err := os.Rename(work.Dir, filepath.Join(wdir, upgradedDirName)); err != nil {
		return MajorResult{}, fmt.Errorf("mark the upgraded cluster complete: %w", err)
	}
	if err := atomicfile.SyncDir(wdir); err != nil {
		return MajorResult{}, err
	}
	if o.stopAfter == "upgraded" {
		return MajorResult{}, errStopped
	}
	return finishSwap(ctx, o, acct, p.Writer, p.Readers, id)
}

// ResumeMajorUpgrade finishes, on the stopped twin, an upgrade a crash interrupted after the
// upgraded cluster was complete (see the top of this file); resumed is false when there was
// none to finish (a discarded, stale attempt included).
func ResumeMajorUpgrade(ctx context.Context, o MajorUpgrade) (res MajorResult, resumed bool, err error) {
	l := statedir.Layout{Root: o.StateDir}
	st, ok, err := supervisor.LoadState(l)
	if err != nil || !ok {
		return res, false, err
	}
	var writer string
	var readers []string
	for _, in := range st.Instances {
		if in.Role == api.RoleWriter {
			writer = in.Name
		} else {
			readers = append(readers, in.Name)
		}
	}
	if writer == "" {
		return res, false, nil
	}
	wdir := l.InstanceDir(writer)
	_ = os.RemoveAll(filepath.Join(wdir, workDirName)) // an unfinished attempt changed nothing...
	upgraded := filepath.Join(wdir, upgradedDirName)
	raw, err := os.ReadFile(filepath.Join(upgraded, newIDFile))
	if errors.Is(err, os.ErrNotExist) {
		// ...but pg_upgrade --link disables the old cluster before linking its files; the new
		// cluster never ran, so the old one is whole and is enabled again (as pg_upgrade's
		// documentation says: remove the .old suffix of global/pg_control).
		data := filepath.Join(wdir, "data")
		if disabled(data) {
			if err := os.Rename(filepath.Join(data, "global", "pg_control.old"), filepath.Join(data, "global", "pg_control")); err != nil {
				return res, false, fmt.Errorf("enable the old cluster again after an interrupted pg_upgrade --link: %w", err)
			}
			o.progress("the old cluster, disabled by an interrupted pg_upgrade --link, is enabled again")
		}
		return res, false, nil
	} else if err != nil {
		return res, false, err
	}
	id := strings.TrimSpace(string(raw))
	acct, err := runas.Resolve(o.Config.Target.Local.OSUser)
	if err != nil {
		return res, false, err
	}
	data := filepath.Join(wdir, "data")
	// The exchange by two renames stopped half way: the new cluster goes into place.
	if _, err := os.Stat(data); errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat(filepath.Join(upgraded, swapOldName)); err == nil {
			if err := os.Rename(filepath.Join(upgraded, "data"), data); err != nil {
				return res, false, err
			}
		}
	}
	swapped, err := isCluster(ctx, acct, data, id)
	if err != nil {
		return res, false, err
	}
	if !swapped && !disabled(data) {
		o.progress("discarding an interrupted upgrade's copy %s: the old cluster may have run since; upgrading again", upgraded)
		return res, false, os.RemoveAll(upgraded)
	}
	o.progress("finishing the upgrade a crash interrupted")
	res, err = finishSwap(ctx, o, acct, writer, readers, id)
	return res, true, err
}

// finishSwap does what follows a complete upgraded cluster, each step done at most once: the
// readers' data set aside, the exchange, the old cluster kept, stanza-upgrade.
func finishSwap(ctx context.Context, o MajorUpgrade, acct *runas.Account, writer string, readers []string, id string) (MajorResult, error) {
	l := statedir.Layout{Root: o.StateDir}
	wdir := l.InstanceDir(writer)
	upgraded := filepath.Join(wdir, upgradedDirName)
	var res MajorResult
	for _, r := range readers {
		if _, err := os.Stat(l.DataDir(r)); err != nil {
			continue
		}
		kept, err := setAside(l.InstanceDir(r), l.DataDir(r))
		if err != nil {
			return res, err
		}
		res.Kept = append(res.Kept, kept)
		o.progress("the reader %s is recreated from the upgraded writer by base backup at the next start (its old data: %s)", r, kept)
	}
	if o.stopAfter == "readers" {
		return res, errStopped
	}
	data := l.DataDir(writer)
	if swapped, err := isCluster(ctx, acct, data, id); err != nil {
		return res, err
	} else if !swapped {
		if err := exchange(filepath.Join(upgraded, "data"), data); err != nil {
			return res, err
		}
	}
	if o.stopAfter == "exchange" {
		return res, errStopped
	}
	if _, err := os.Stat(filepath.Join(upgraded, "data")); err == nil {
		kept, err := setAside(wdir, filepath.Join(upgraded, "data"))
		if err != nil {
			return res, err
		}
		res.Kept = append([]string{kept}, res.Kept...)
		res.From, _ = majorOf(kept)
	}
	if err := os.RemoveAll(upgraded); err != nil {
		return res, err
	}
	if err := atomicfile.SyncDir(wdir); err != nil {
		return res, err
	}
	res.To, _ = majorOf(data)
	if _, err := os.Stat(l.BackupDir()); err == nil {
		repo, _, err := supervisor.OpenRepo(o.Config, o.StateDir)
		if err != nil {
			return res, err
		}
		// A stanza not created yet (no backup taken so far) is created by the next start.
		if _, err := os.Stat(filepath.Join(repo.RepoPath(), "archive", repo.Config().Stanza, "archive.info")); err == nil {
			o.progress("telling the backup repository of the upgraded cluster (pgbackrest stanza-upgrade)")
			if err := repo.StanzaUpgrade(ctx); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

// exchange swaps two data directories in one step where the file system can (renameat2
// RENAME_EXCHANGE), else by two renames through upgraded/old, which ResumeMajorUpgrade completes.
func exchange(newData, data string) error {
	err := unix.Renameat2(unix.AT_FDCWD, newData, unix.AT_FDCWD, data, unix.RENAME_EXCHANGE)
	if err == nil {
		return atomicfile.SyncDir(filepath.Dir(data))
	}
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EXDEV) {
		return fmt.Errorf("put the upgraded data directory in place: %w", err)
	}
	old := filepath.Join(filepath.Dir(newData), swapOldName)
	if err := os.Rename(data, old); err != nil {
		return fmt.Errorf("put the upgraded data directory in place: %w", err)
	}
	if err := os.Rename(newData, data); err != nil {
		return fmt.Errorf("put the upgraded data directory in place (the old one is %s): %w", old, err)
	}
	return os.Rename(old, newData)
}

// setAside renames a data directory to data.pre-upgrade-<its major> in instanceDir (with a time
// stamp when one is already there) and returns the new path.
func setAside(instanceDir, dataDir string) (string, error) {
	major, err := majorOf(dataDir)
	if err != nil {
		return "", err
	}
	kept := filepath.Join(instanceDir, oldDataPrefix+strconv.Itoa(major))
	if _, err := os.Stat(kept); err == nil {
		kept += "-" + time.Now().UTC().Format("20060102T150405Z")
	}
	if err := os.Rename(dataDir, kept); err != nil {
		return "", fmt.Errorf("keep the old data directory as %s: %w", kept, err)
	}
	return kept, nil
}

// majorOf is the major version a data directory was made by (its PG_VERSION).
func majorOf(dataDir string) (int, error) {
	data, err := os.ReadFile(filepath.Join(dataDir, "PG_VERSION"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
}

// disabled reports whether pg_upgrade --link disabled the cluster in dataDir (it renames
// global/pg_control once the new cluster shares its files): it can no longer start.
func disabled(dataDir string) bool {
	_, err := os.Stat(filepath.Join(dataDir, "global", "pg_control"))
	return errors.Is(err, os.ErrNotExist)
}

// isCluster reports whether dataDir holds the cluster of identity id (false for a cluster
// pg_upgrade --link disabled: that one is the old cluster).
func isCluster(ctx context.Context, acct *runas.Account, dataDir, id string) (bool, error) {
	if disabled(dataDir) {
		return false, nil
	}
	current, err := dataSystemID(ctx, acct, dataDir)
	return current == id, err
}

// PendingMajorUpgrade reports whether a major upgrade of the twin in stateDir was interrupted
// after its upgraded cluster was complete, or while pg_upgrade --link disabled the old cluster:
// apgstack upgrade finishes it (or enables the old cluster again and upgrades anew).
func PendingMajorUpgrade(stateDir string) bool {
	instances := statedir.Layout{Root: stateDir}.InstancesDir()
	if m, _ := filepath.Glob(filepath.Join(instances, "*", upgradedDirName, newIDFile)); len(m) > 0 {
		return true
	}
	// pg_upgrade --link interrupted while linking: the old cluster is disabled until resumed.
	work, _ := filepath.Glob(filepath.Join(instances, "*", workDirName))
	for _, w := range work {
		if disabled(filepath.Join(filepath.Dir(w), "data")) {
			return true
		}
	}
	return false
}

var systemIDRE = regexp.MustCompile(`Database system identifier:\s+(\d+)`)

// dataSystemID is the identity of the cluster in dataDir, read with its own major's pg_controldata.
func dataSystemID(ctx context.Context, acct *runas.Account, dataDir string) (string, error) {
	major, err := majorOf(dataDir)
	if err != nil {
		return "", err
	}
	bin, _, err := instance.FindBinaries(ctx, major, true)
	if err != nil {
		return "", notInstalled(major, "its programs read the data directory "+dataDir, err)
	}
	return systemID(ctx, acct, bin, dataDir)
}

func systemID(ctx context.Context, acct *runas.Account, bin instance.Binaries, dataDir string) (string, error) {
	cmd := acct.Command(ctx, bin.Path("pg_controldata"), "-D", dataDir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("pg_controldata %s: %w: %s", dataDir, err, strings.TrimSpace(out.String()))
	}
	m := systemIDRE.FindSubmatch(out.Bytes())
	if m == nil {
		return "", fmt.Errorf("pg_controldata %s: no system identifier", dataDir)
	}
	return string(m[1]), nil
}
