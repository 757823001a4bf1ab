// Package backup keeps the local twin's backups: continuous WAL archiving and full, differential
// and incremental backups with pgBackRest into an encrypted repository in the state directory,
// retention from the best-practice data, point-in-time restore into a new data directory, and
// snapshots (self-contained base backups that outlive the cluster).
//
// pgBackRest runs as the server account (runas): it must read the data directory and the server
// runs its archive_command as that account.
package backup

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/apgstack/apgstack/internal/runas"
)

// Backup types pgBackRest knows.
const (
	Full = "full"
	Diff = "diff"
	Incr = "incr"
)

// Config is one cluster's repository and the server it backs up.
type Config struct {
	// Dir holds everything of the repository: pgbackrest.conf, the cipher passphrase, repo/,
	// log/, lock/, spool/. The server account owns it.
	Dir string
	// Stanza names the cluster in the repository (the database stack's name).
	Stanza string
	// DataDir, SocketDir and Port locate the server backups are taken from (the writer).
	DataDir   string
	SocketDir string
	Port      int
	// User is the database superuser pgBackRest connects as over the unix socket (peer).
	User string
	// RetentionDays keeps full backups (and the WAL they need) this many days:
	// bestpractice.Stage(stage).BackupRetentionDays.
	RetentionDays int
	// ProcessMax is pgBackRest's parallelism; 0 means 2, or 1 on a single CPU.
	ProcessMax int
}

// stanzaPattern is what this package lets through as a stanza name (it ends up in a shell
// command line, archive_command).
var stanzaPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,62}$`)

func (c Config) validate() error {
	switch {
	case !filepath.IsAbs(c.Dir):
		return fmt.Errorf("backup: repository directory %q: an absolute path is needed", c.Dir)
	case !stanzaPattern.MatchString(c.Stanza):
		return fmt.Errorf("backup: stanza %q: a letter, then up to 62 letters, digits, '-' or '_'", c.Stanza)
	case !filepath.IsAbs(c.DataDir):
		return fmt.Errorf("backup: data directory %q: an absolute path is needed", c.DataDir)
	case c.SocketDir == "":
		return errors.New("backup: the server's unix socket directory is needed")
	case c.Port < 1 || c.Port > 65535:
		return fmt.Errorf("backup: port %d: 1..65535 allowed", c.Port)
	case c.RetentionDays < 1 || c.RetentionDays > 9999999:
		return fmt.Errorf("backup: retention %d days: 1..9999999 allowed", c.RetentionDays)
	case c.ProcessMax < 0 || c.ProcessMax > 999:
		return fmt.Errorf("backup: process-max %d: 0 (automatic) to 999 allowed", c.ProcessMax)
	}
	return nil
}

// Repo is a pgBackRest repository for one cluster.
type Repo struct {
	cfg  Config
	acct *runas.Account
	bin  string
	log  *slog.Logger
}

// New checks the configuration and finds pgbackrest. Nothing is written yet (see Setup).
func New(cfg Config, acct *runas.Account, log *slog.Logger) (*Repo, error) {
	if cfg.User == "" {
		cfg.User = "postgres"
	}
	if cfg.ProcessMax == 0 {
		cfg.ProcessMax = min(2, runtime.NumCPU())
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	bin, err := exec.LookPath("pgbackrest")
	if err != nil {
		return nil, fmt.Errorf("backup: pgbackrest not found: install the Debian package pgbackrest: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Repo{cfg: cfg, acct: acct, bin: bin, log: log}, nil
}

// Config returns the repository's configuration.
func (r *Repo) Config() Config { return r.cfg }

// ConfigFile is pgbackrest.conf; it holds no secret.
func (r *Repo) ConfigFile() string { return filepath.Join(r.cfg.Dir, "pgbackrest.conf") }

// includeDir holds cipher.conf, the repository passphrase (0600): pgBackRest reads every *.conf
// in it, so the passphrase never has to be on a command line or in the main file.
func (r *Repo) includeDir() string { return filepath.Join(r.cfg.Dir, "conf.d") }

// PassphraseFile is the 0600 file with the repository's cipher passphrase.
func (r *Repo) PassphraseFile() string { return filepath.Join(r.includeDir(), "cipher.conf") }

// RepoPath is where backups and archived WAL are kept.
func (r *Repo) RepoPath() string { return filepath.Join(r.cfg.Dir, "repo") }

// LogDir holds pgBackRest's own logs.
func (r *Repo) LogDir() string { return filepath.Join(r.cfg.Dir, "log") }

// Render returns pgbackrest.conf. It is a pure function of the configuration.
func Render(r Config, repoDir string) string {
	var b strings.Builder
	b.WriteString("# Written by apgstack; changes are overwritten.\n")
	b.WriteString("[global]\n")
	set := func(k, v string) { fmt.Fprintf(&b, "%s=%s\n", k, v) }
	set("repo1-path", filepath.Join(repoDir, "repo"))
	// Encrypted like Aurora's storage and backups; the passphrase is in conf.d/cipher.conf.
	set("repo1-cipher-type", "aes-256-cbc")
	// Point-in-time restore over the whole retention window: full backups (and the WAL after
	// them) are kept for the stage's retention days.
	set("repo1-retention-full-type", "time")
	set("repo1-retention-full", strconv.Itoa(r.RetentionDays))
	set("compress-type", "zst")
	set("compress-level", "3")
	set("process-max", strconv.Itoa(r.ProcessMax))
	set("log-path", filepath.Join(repoDir, "log"))
	set("lock-path", filepath.Join(repoDir, "lock"))
	// The spool holds archive-get's queue when asynchronous archiving is turned on; archiving
	// stays synchronous here so that no pgBackRest process outlives the server's archive_command.
	set("spool-path", filepath.Join(repoDir, "spool"))
	set("archive-async", "n")
	set("log-level-console", "warn")
	set("log-level-file", "info")
	set("log-level-stderr", "off")
	// Backups start at once (fast checkpoint) rather than waiting for the next one.
	set("start-fast", "y")
	set("archive-timeout", "60")
	fmt.Fprintf(&b, "\n[%s]\n", r.Stanza)
	set("pg1-path", r.DataDir)
	set("pg1-socket-path", r.SocketDir)
	set("pg1-port", strconv.Itoa(r.Port))
	set("pg1-user", r.User)
	return b.String()
}

// Setup creates the repository directories owned by the server account, the passphrase on first
// use, and (re)writes pgbackrest.conf (the writer's port or directory may have changed).
func (r *Repo) Setup() error {
	if err := r.acct.MkdirAll(r.cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	for _, d := range []string{r.includeDir(), r.RepoPath(), r.LogDir(), filepath.Join(r.cfg.Dir, "lock"), filepath.Join(r.cfg.Dir, "spool")} {
		if err := r.acct.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
	}
	if _, err := os.Stat(r.PassphraseFile()); errors.Is(err, os.ErrNotExist) {
		pass, err := passphrase()
		if err != nil {
			return err
		}
		if err := r.writeOwned(r.PassphraseFile(), "# The repository's passphrase: without it no backup can be read.\n[global]\nrepo1-cipher-pass="+pass+"\n"); err != nil {
			return err
		}
	} else if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return r.writeOwned(r.ConfigFile(), Render(r.cfg, r.cfg.Dir))
}

func passphrase() (string, error) {
	b := make([]byte, 48)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("backup: generate passphrase: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func (r *Repo) writeOwned(path, data string) error {
	if err := r.acct.WriteFile(path, []byte(data), 0o600); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

// configArgs are the options every pgbackrest invocation carries.
func (r *Repo) configArgs() []string {
	return []string{"--config=" + r.ConfigFile(), "--config-include-path=" + r.includeDir(), "--stanza=" + r.cfg.Stanza}
}

// ArchiveCommand is the server's archive_command: each WAL segment pushed into the repository.
// The server runs it in its data directory, and pgBackRest insists that directory is pg1-path:
// giving it as the working directory lets the same command serve whichever instance is the
// writer, before and after a failover.
func (r *Repo) ArchiveCommand() string {
	parts := []string{shellQuote(r.bin)}
	for _, a := range r.configArgs() {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(append(parts, `--pg1-path="$(pwd -P)"`, "archive-push", "%p"), " ")
}

// shellQuote quotes s for sh unless it is plainly safe (the common case keeps the command readable).
func shellQuote(s string) string {
	if regexp.MustCompile(`^[A-Za-z0-9_./=:@%+-]+$`).MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// run runs pgbackrest as the server account and returns its standard output.
func (r *Repo) run(ctx context.Context, command string, args ...string) ([]byte, error) {
	argv := append(r.configArgs(), args...)
	argv = append(argv, command)
	cmd := r.acct.Command(ctx, r.bin, argv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := runGroup(cmd)
	r.log.Debug("pgbackrest", "command", command, "args", args, "took", time.Since(start), "err", err)
	if err != nil {
		msg := strings.TrimSpace(stderr.String() + "\n" + stdout.String())
		return nil, fmt.Errorf("backup: pgbackrest %s (stanza %s): %w: %s", command, r.cfg.Stanza, err, msg)
	}
	return stdout.Bytes(), nil
}

// StanzaCreate initializes the stanza (idempotent). The server must run.
func (r *Repo) StanzaCreate(ctx context.Context) error {
	_, err := r.run(ctx, "stanza-create")
	return err
}

// StanzaUpgrade tells the repository that the cluster is a new one after pg_upgrade (new major or
// system identifier), with the server stopped; backups and archiving go on in the same stanza.
func (r *Repo) StanzaUpgrade(ctx context.Context) error {
	_, err := r.run(ctx, "stanza-upgrade", "--no-online")
	return err
}

// Check verifies that archiving works end to end: it forces a WAL switch and waits for the
// segment to reach the repository.
func (r *Repo) Check(ctx context.Context) error {
	_, err := r.run(ctx, "check")
	return err
}

// Backup takes a backup of the given type (Full, Diff, Incr; an incremental or differential one
// without a prior full becomes full). Annotations are stored with the backup.
func (r *Repo) Backup(ctx context.Context, typ string, annotations map[string]string) error {
	switch typ {
	case Full, Diff, Incr:
	default:
		return fmt.Errorf("backup: type %q: full, diff or incr allowed", typ)
	}
	args := []string{"--type=" + typ}
	for k, v := range annotations {
		args = append(args, "--annotation="+k+"="+v)
	}
	_, err := r.run(ctx, "backup", args...)
	return err
}

// Take takes a backup as Backup does and returns the set it made, as pgBackRest recorded it:
// its type and label say full when pgBackRest promoted an incremental or differential backup
// (there was no full backup to build on), so callers report what was taken, not what was asked.
func (r *Repo) Take(ctx context.Context, typ string, annotations map[string]string) (Set, error) {
	if err := r.Backup(ctx, typ, annotations); err != nil {
		return Set{}, err
	}
	info, err := r.Info(ctx)
	if err != nil {
		return Set{}, err
	}
	// Backups of a stanza are serialized by pgBackRest's lock, and Info lists them oldest
	// first: the newest is the one just taken.
	if n := len(info.Backups); n > 0 {
		return info.Backups[n-1], nil
	}
	return Set{}, fmt.Errorf("backup: pgbackrest backup of stanza %s succeeded but the repository lists no backup", r.cfg.Stanza)
}

// Promoted reports whether pgBackRest took a full backup when requested asked for another type.
func (s Set) Promoted(requested string) bool { return s.Type == Full && requested != Full }

// Expire removes backups and WAL older than the retention.
func (r *Repo) Expire(ctx context.Context) error {
	_, err := r.run(ctx, "expire")
	return err
}

// RestoreOptions say where and to what moment a restore goes.
type RestoreOptions struct {
	// DataDir is the new data directory; it must not exist or be empty, and must not be the
	// source's.
	DataDir string
	// Time is the moment to recover to; zero means the end of the archived WAL.
	Time time.Time
	// ArchiveOff writes archive_mode=off into the restored postgresql.auto.conf, so the new
	// cluster never pushes WAL into the source's repository; leave it false only when the new
	// cluster's configuration is rewritten before its first start.
	ArchiveOff bool
}

// Restore restores into a new data directory and sets it up to recover to the target and
// promote. The source cluster and its data directory are not touched.
func (r *Repo) Restore(ctx context.Context, o RestoreOptions) error {
	if !filepath.IsAbs(o.DataDir) {
		return fmt.Errorf("backup: restore data directory %q: an absolute path is needed", o.DataDir)
	}
	if filepath.Clean(o.DataDir) == filepath.Clean(r.cfg.DataDir) {
		return fmt.Errorf("backup: restore data directory %s is the source's own: restore into a new directory", o.DataDir)
	}
	if entries, err := os.ReadDir(o.DataDir); err == nil && len(entries) > 0 {
		return fmt.Errorf("backup: restore data directory %s is not empty", o.DataDir)
	}
	if err := r.acct.MkdirAll(o.DataDir, 0o700); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	args := []string{"--pg1-path=" + o.DataDir}
	if o.Time.IsZero() {
		args = append(args, "--type=default")
	} else {
		// pgBackRest picks a backup that stopped before the target by whole seconds, so a
		// target in the second a backup ended finds none: choose the set here, to the second,
		// and let PostgreSQL check the exact moment.
		info, err := r.Info(ctx)
		if err != nil {
			return err
		}
		set := ""
		for _, b := range info.Backups {
			if !b.Error && !b.Stop.After(o.Time) {
				set = b.Label
			}
		}
		if set == "" {
			return fmt.Errorf("backup: no backup of stanza %s ended by %s: the earliest restorable moment is %s",
				r.cfg.Stanza, FormatTarget(o.Time), info.EarliestRestorable().Format(time.RFC3339))
		}
		args = append(args, "--type=time", "--target="+FormatTarget(o.Time), "--target-action=promote", "--set="+set)
	}
	if o.ArchiveOff {
		args = append(args, "--archive-mode=off")
	}
	_, err := r.run(ctx, "restore", args...)
	return err
}

// FormatTarget renders a moment as recovery_target_time wants it (UTC, microseconds).
func FormatTarget(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05.000000") + "+00"
}

// runGroup runs cmd in a process group of its own. When its context is cancelled (the
// supervisor stops) the whole group gets SIGTERM — pgBackRest's worker processes and
// pg_basebackup's WAL streamer included, which a SIGKILL of the leader alone would orphan — and
// runGroup returns only once every process of the group has gone.
func runGroup(cmd *exec.Cmd) error {
	cmd.SysProcAttr.Setpgid = true
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Start(); err != nil {
		return err
	}
	err := cmd.Wait()
	pgid := cmd.Process.Pid
	deadline, killed := time.Now().Add(30*time.Second), false
	for syscall.Kill(-pgid, 0) == nil {
		if time.Now().After(deadline) {
			if killed {
				break // only zombies can be left; their parent reaps them
			}
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			deadline, killed = time.Now().Add(5*time.Second), true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}
