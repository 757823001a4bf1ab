package twin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/internal/runas"
	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/instance"
	"github.com/apgstack/apgstack/internal/twin/postgres"
	"github.com/apgstack/apgstack/internal/twin/statedir"
	"github.com/apgstack/apgstack/internal/twin/supervisor"
)

// A major version upgrade of the local twin, done offline as Aurora does one in place: the twin
// stopped, the writer's data directory upgraded by pg_upgrade into a new data directory, the
// configuration carried over, the readers recreated from the upgraded writer by base backup when
// the twin starts again. The old data directories stay beside the new ones (data.pre-upgrade-NN)
// until DeleteOldData, so the upgrade can be undone by hand until then.

// oldDataPrefix names a data directory a major upgrade kept: data.pre-upgrade-<old major>.
const oldDataPrefix = "data.pre-upgrade-"

// MajorPlan is what a major upgrade of a twin would do, decided before anything is touched.
type MajorPlan struct {
	From, To  int    // data directory major, target major
	ToVersion string // the server version that will run, e.g. 15.18
	Writer    string
	Readers   []string
	old, next instance.Binaries
}

// Needed reports whether the data must go through pg_upgrade (the majors differ).
func (p MajorPlan) Needed() bool { return p.From != p.To }

// InstallHint is the command that installs a major's server with the extension the parameter
// group preloads (Debian package names; https://apt.postgresql.org has every major).
func InstallHint(major int) string {
	return fmt.Sprintf("apt-get install postgresql-%d postgresql-%d-pgaudit", major, major)
}

// PlanMajorUpgrade reads the twin in stateDir and checks that next's major can be reached:
// the target major's server installed (with pgaudit when the twin preloads it), the data's own
// major installed too (pg_upgrade runs both), no downgrade. Nothing is changed.
func PlanMajorUpgrade(ctx context.Context, stateDir string, next apgstack.Config) (MajorPlan, error) {
	var p MajorPlan
	to, err := strconv.Atoi(apgstack.EngineMajor(next.Database.EngineVersion))
	if err != nil {
		return p, fmt.Errorf("database.engineVersion %q: %w", next.Database.EngineVersion, err)
	}
	p.To = to
	if !Exists(stateDir) {
		return p, NoTwin(stateDir)
	}
	l := statedir.Layout{Root: stateDir}
	st, ok, err := supervisor.LoadState(l)
	if err != nil {
		return p, err
	}
	if !ok || len(st.Instances) == 0 {
		return p, fmt.Errorf("the twin in %s has no instances recorded yet: start it once with apgstack up", stateDir)
	}
	for _, in := range st.Instances {
		if in.Role == api.RoleWriter {
			p.Writer = in.Name
		} else {
			p.Readers = append(p.Readers, in.Name)
		}
	}
	if p.Writer == "" {
		return p, fmt.Errorf("the twin in %s records no writer: start it with apgstack up first", stateDir)
	}
	w := instance.Instance{Name: p.Writer, Dir: l.InstanceDir(p.Writer)}
	if p.From, err = w.DataMajor(); err != nil {
		return p, fmt.Errorf("the writer %s's data directory: %w", p.Writer, err)
	}
	if to < p.From {
		return p, fmt.Errorf("database.engineVersion %s: the twin's data is PostgreSQL %d and pg_upgrade does not go back to an older major: "+
			"restore a snapshot taken before the upgrade into a new twin instead", next.Database.EngineVersion, p.From)
	}
	if p.next, _, err = instance.FindBinaries(ctx, to, true); err != nil {
		return p, notInstalled(to, "the upgrade needs its server", err)
	}
	p.ToVersion = p.next.Version
	if !p.Needed() {
		return p, nil
	}
	if p.old, _, err = instance.FindBinaries(ctx, p.From, true); err != nil {
		return p, notInstalled(p.From, "pg_upgrade reads the old data with the old major's programs", err)
	}
	if preloads(w.DataDir(), "pgaudit") && !p.next.HasLibrary("pgaudit") {
		return p, fmt.Errorf("pgaudit is not installed for PostgreSQL %d and the twin preloads it: install it with `%s`, then run the upgrade again; nothing was changed",
			to, InstallHint(to))
	}
	return p, nil
}

// ErrMajorNotInstalled is returned by PlanMajorUpgrade when a major it needs has no server here.
var ErrMajorNotInstalled = errors.New("not installed on this machine")

func notInstalled(major int, why string, err error) error {
	var mismatch *instance.VersionMismatch
	if errors.As(err, &mismatch) || errors.Is(err, instance.ErrNotInstalled) {
		return fmt.Errorf("PostgreSQL %d is %w (%s): install it with `%s` "+
			"(from the PostgreSQL project's apt repository, https://apt.postgresql.org; Debian 12 ships only PostgreSQL 15), then run the upgrade again; nothing was changed",
			major, ErrMajorNotInstalled, why, InstallHint(major))
	}
	return err
}

// preloads reports whether the server configuration in dataDir preloads library.
func preloads(dataDir, library string) bool {
	for _, l := range strings.Split(preloadLibraries(dataDir), ",") {
		if strings.TrimSpace(l) == library {
			return true
		}
	}
	return false
}

// preloadLibraries is the shared_preload_libraries value of the configuration in dataDir.
func preloadLibraries(dataDir string) string {
	data, err := os.ReadFile(filepath.Join(dataDir, "postgresql.conf"))
	if err != nil {
		return ""
	}
	value := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && strings.TrimSpace(k) == "shared_preload_libraries" {
			v, _, _ = strings.Cut(v, "#")
			value = strings.Trim(strings.TrimSpace(v), "'")
		}
	}
	return value
}

// MajorUpgrade upgrades a stopped twin's data to a new major.
type MajorUpgrade struct {
	StateDir string
	Config   apgstack.Config // the configuration after the upgrade; its engineVersion names the major
	// Link makes pg_upgrade hard-link the data files instead of copying them: fast and without
	// a second copy on disk, but the kept old directory cannot be started once the new one has.
	Link     bool
	Progress io.Writer
	// Plan, when set, is a plan made by PlanMajorUpgrade; else the upgrade makes it (tests run
	// 15 -> 15 by setting From and To of a plan: pg_upgrade accepts an equal major).
	Plan *MajorPlan
	// stopAfter, in tests, ends the upgrade right after the named step as a crash would (nothing
	// cleaned up): "pg_upgrade" (the new cluster made, not yet marked complete), "upgraded",
	// "readers" or "exchange".
	stopAfter string
}

func (o MajorUpgrade) progress(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", args...)
	}
}

// MajorResult is what an upgrade did.
type MajorResult struct {
	From, To int
	// Kept are the old data directories, kept until DeleteOldData.
	Kept []string
}

// pgUpgrade runs pg_upgrade as the server account in the work instance's directory (where it
// writes its logs), on ports free now, with archiving off on both servers while it runs (the new
// cluster is not the repository's until stanza-upgrade) and the old preload libraries loaded into
// the new cluster (pgaudit refuses to load otherwise).
func pgUpgrade(ctx context.Context, acct *runas.Account, p MajorPlan, oldData string, work *instance.Instance, link, check bool) error {
	oldPort, err := freeLoopbackPort()
	if err != nil {
		return err
	}
	newPort, err := freeLoopbackPort()
	if err != nil {
		return err
	}
	newOpts := "-c archive_mode=off -c synchronous_standby_names=''"
	if libs := preloadLibraries(oldData); libs != "" {
		newOpts += " -c shared_preload_libraries='" + libs + "'"
	}
	args := []string{"-b", p.old.BinDir, "-B", p.next.BinDir, "-d", oldData, "-D", work.DataDir(),
		"-U", postgres.Superuser, "-s", work.Dir, "-p", strconv.Itoa(oldPort), "-P", strconv.Itoa(newPort),
		"-o", "-c archive_mode=off -c synchronous_standby_names=''", "-O", newOpts}
	switch {
	case check:
		args = append(args, "--check")
	case link:
		args = append(args, "--link")
	} // else copy, pg_upgrade's default (--copy is spelled out only from PostgreSQL 16)
	cmd := acct.Command(ctx, p.next.Path("pg_upgrade"), args...)
	cmd.Dir = work.Dir
	cmd.SysProcAttr.Setpgid = true
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pg_upgrade: %w: %s (its logs: %s)", err, lastLines(out.String(), 15), filepath.Join(work.DataDir(), "pg_upgrade_output.d"))
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func freeLoopbackPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port for pg_upgrade: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// OldData lists the data directories a major upgrade kept in the twin of stateDir.
func OldData(stateDir string) ([]string, error) {
	return filepath.Glob(filepath.Join(statedir.Layout{Root: stateDir}.InstancesDir(), "*", oldDataPrefix+"*"))
}

// DeleteOldData deletes the data directories a major upgrade kept, once the user has confirmed
// that the upgraded twin serves; it returns what it deleted.
func DeleteOldData(stateDir string) ([]string, error) {
	old, err := OldData(stateDir)
	if err != nil {
		return nil, err
	}
	for _, d := range old {
		if err := os.RemoveAll(d); err != nil {
			return nil, fmt.Errorf("delete the old data directory %s: %w", d, err)
		}
	}
	return old, nil
}
