// Package instance runs one PostgreSQL server of the local twin and holds its PostgreSQL
// primitives: initdb or a base backup of the writer, start as a child process of the supervisor
// (so its death is seen at once) or as a standby, stop, health; replication status, slots,
// synchronous_standby_names, waits for streaming and replay (replication.go); promote, drain,
// checkpoint (roles.go); pg_rewind and pg_controldata (rewind.go); fencing (procs.go). Server
// programs run as the unprivileged account from runas. The supervisor decides; this package
// only acts.
package instance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/apgstack/apgstack/internal/atomicfile"
	"github.com/apgstack/apgstack/internal/runas"
	"github.com/apgstack/apgstack/internal/twin/postgres"
	"github.com/jackc/pgx/v5"
)

// maxSocketPath is the longest unix socket path Linux accepts (sun_path less the NUL).
const maxSocketPath = 107

// Instance is one server. Its directory holds data/, the unix socket, the TLS files and the
// startup log; the account owns it.
type Instance struct {
	Name string
	Dir  string
	Port int
	Bin  Binaries
	Acct *runas.Account
	Log  *slog.Logger

	mu      sync.Mutex
	proc    *os.Process // the postmaster: started by Start, or adopted by Adopt
	done    chan struct{}
	waitErr error
}

// DataDir is PGDATA.
func (i *Instance) DataDir() string { return filepath.Join(i.Dir, "data") }

// SocketDir holds the unix socket the supervisor connects through.
func (i *Instance) SocketDir() string { return i.Dir }

// CertFile and KeyFile are the server's TLS files.
func (i *Instance) CertFile() string { return filepath.Join(i.Dir, "server.crt") }
func (i *Instance) KeyFile() string  { return filepath.Join(i.Dir, "server.key") }

// StartupLog receives the server's output before its logging collector takes over.
func (i *Instance) StartupLog() string { return filepath.Join(i.Dir, "startup.log") }

// Prepare creates the instance directory, owned by the account, and checks the socket path fits.
func (i *Instance) Prepare() error {
	sock := filepath.Join(i.SocketDir(), ".s.PGSQL."+strconv.Itoa(i.Port))
	if len(sock) > maxSocketPath {
		return fmt.Errorf("instance %s: the unix socket path %s is %d characters, longer than the %d Linux allows: choose a shorter --state-dir",
			i.Name, sock, len(sock), maxSocketPath)
	}
	return i.Acct.MkdirAll(i.Dir, 0o700)
}

// Initialized reports whether the data directory holds a cluster.
func (i *Instance) Initialized() bool {
	_, err := os.Stat(filepath.Join(i.DataDir(), "PG_VERSION"))
	return err == nil
}

// DataMajor is the major version the data directory was created with.
func (i *Instance) DataMajor() (int, error) {
	data, err := os.ReadFile(filepath.Join(i.DataDir(), "PG_VERSION"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
}

// InitDB creates the cluster: data checksums, UTF-8, the supervisor's superuser with peer
// authentication on the socket and SCRAM on TCP (pg_hba.conf is replaced before the first start).
// The cluster is made beside its final place and moved in only when whole, so an interrupted
// initdb never leaves a data directory to be taken for a cluster.
func (i *Instance) InitDB(ctx context.Context) error {
	partial := i.DataDir() + ".initdb"
	if err := os.RemoveAll(partial); err != nil {
		return fmt.Errorf("remove %s: %w", partial, err)
	}
	if err := i.run(ctx, "initdb", "-D", partial, "-U", postgres.Superuser,
		"--auth-local=peer", "--auth-host=scram-sha-256", "--data-checksums",
		"--encoding=UTF8", "--locale=C.UTF-8"); err != nil {
		_ = os.RemoveAll(partial)
		return err
	}
	if err := os.Rename(partial, i.DataDir()); err != nil {
		return fmt.Errorf("move the new cluster into place: %w", err)
	}
	return atomicfile.SyncDir(i.Dir)
}

// BaseBackup creates a reader's data directory from the writer, streaming the WAL it needs and
// retaining WAL in the named replication slot (which must exist). The copy is made beside the
// final place and moved in only when complete.
func (i *Instance) BaseBackup(ctx context.Context, from *Instance, slot string) error {
	partial := i.DataDir() + ".partial"
	if err := os.RemoveAll(partial); err != nil {
		return fmt.Errorf("remove %s: %w", partial, err)
	}
	if err := i.run(ctx, "pg_basebackup", "-h", from.SocketDir(), "-p", strconv.Itoa(from.Port), "-U", postgres.Superuser,
		"-D", partial, "-X", "stream", "-S", slot, "--checkpoint=fast", "--no-password"); err != nil {
		return err
	}
	// The writer's ALTER SYSTEM settings (synchronous_standby_names) are the writer's business.
	if err := i.Acct.WriteFile(filepath.Join(partial, "postgresql.auto.conf"), nil, 0o600); err != nil {
		return fmt.Errorf("reset postgresql.auto.conf: %w", err)
	}
	if err := os.Rename(partial, i.DataDir()); err != nil {
		return fmt.Errorf("move base backup into place: %w", err)
	}
	if err := atomicfile.SyncDir(i.Dir); err != nil {
		return err
	}
	return i.WriteFile("standby.signal", nil)
}

// WriteFile writes a file into the data directory, owned by the account, mode 0600.
func (i *Instance) WriteFile(name string, data []byte) error {
	return i.writeOwned(filepath.Join(i.DataDir(), name), data)
}

// WriteTLS installs the server certificate and key for the account (PostgreSQL insists the key is
// the server account's and not readable by others).
func (i *Instance) WriteTLS(cert, key []byte) error {
	if err := i.writeOwned(i.CertFile(), cert); err != nil {
		return err
	}
	return i.writeOwned(i.KeyFile(), key)
}

func (i *Instance) writeOwned(path string, data []byte) error {
	return i.Acct.WriteFile(path, data, 0o600)
}

func (i *Instance) run(ctx context.Context, program string, args ...string) error {
	cmd := i.Acct.Command(ctx, i.Bin.Path(program), args...)
	// Its own process group, killed whole when ctx ends: pg_basebackup streams WAL from a child
	// process, and initdb runs postgres, which must not outlive an interrupted command.
	cmd.SysProcAttr.Setpgid = true
	// Nor may it outlive a supervisor killed -9, whose successor redoes the work.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	i.logger().Debug("run", "instance", i.Name, "program", program, "args", args)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("instance %s: %s: %w: %s", i.Name, program, err, strings.TrimSpace(out.String()))
	}
	return nil
}

func (i *Instance) logger() *slog.Logger {
	if i.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return i.Log
}

// Start runs the postmaster as a child process and waits until it accepts connections (a reader:
// once it reached a consistent state). A postmaster left over from an earlier supervisor is
// stopped first, so this process owns the one that runs.
func (i *Instance) Start(ctx context.Context) error {
	if err := StopStale(ctx, i.DataDir()); err != nil {
		return err
	}
	logf, err := os.OpenFile(i.StartupLog(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("instance %s: %w", i.Name, err)
	}
	cmd := exec.Command(i.Bin.Path("postgres"), "-D", i.DataDir())
	i.Acct.Apply(cmd)
	// Own process group: a Ctrl-C on the supervisor's terminal must not reach the servers; the
	// supervisor stops them in order.
	cmd.SysProcAttr.Setpgid = true
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("instance %s: start postgres: %w", i.Name, err)
	}
	done := make(chan struct{})
	i.mu.Lock()
	i.proc, i.done = cmd.Process, done
	i.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logf.Close()
		i.mu.Lock()
		i.waitErr = err
		i.mu.Unlock()
		close(done)
	}()
	i.logger().Info("postgres started", "instance", i.Name, "pid", cmd.Process.Pid, "port", i.Port)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := i.Connect(cctx, "postgres")
		cancel()
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("instance %s: postgres exited during start: %s", i.Name, i.tail())
		case <-ctx.Done():
			return fmt.Errorf("instance %s: not accepting connections: %w (last error: %v)", i.Name, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// tail returns the end of the startup log and of the newest server log.
func (i *Instance) tail() string {
	var parts []string
	files := []string{i.StartupLog()}
	if logs, _ := filepath.Glob(filepath.Join(i.DataDir(), "log", "*.log")); len(logs) > 0 {
		files = append(files, logs[len(logs)-1])
	}
	for _, f := range files {
		data, _ := os.ReadFile(f)
		if s := failureLines(string(data)); s != "" {
			parts = append(parts, f+":\n"+s)
		}
	}
	return strings.Join(parts, "\n")
}

// failureLines picks from a server log what says why it failed: the FATAL, PANIC and ERROR lines
// with their DETAIL and HINT, the last eight of them; a log without any gives its last lines.
func failureLines(log string) string {
	lines := strings.Split(strings.TrimSpace(log), "\n")
	var picked []string
	for _, l := range lines {
		for _, level := range []string{"FATAL:", "PANIC:", "ERROR:", "DETAIL:", "HINT:"} {
			if strings.Contains(l, level) {
				picked = append(picked, l)
				break
			}
		}
	}
	if len(picked) == 0 {
		picked = lines
	}
	if len(picked) > 8 {
		picked = picked[len(picked)-8:]
	}
	return strings.TrimSpace(strings.Join(picked, "\n"))
}

// Done is closed when the postmaster started by Start exits (nil before Start).
func (i *Instance) Done() <-chan struct{} {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.done
}

// Running reports whether the postmaster started by Start is alive.
func (i *Instance) Running() bool {
	d := i.Done()
	if d == nil {
		return false
	}
	select {
	case <-d:
		return false
	default:
		return true
	}
}

// PID is the postmaster's process id, 0 when not running.
func (i *Instance) PID() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.proc == nil {
		return 0
	}
	return i.proc.Pid
}

// Stop shuts the server down: fast shutdown (SIGINT), immediate (SIGQUIT) if it takes longer than
// 30 s or ctx ends.
func (i *Instance) Stop(ctx context.Context) error {
	i.mu.Lock()
	proc, done := i.proc, i.done
	i.mu.Unlock()
	if proc == nil {
		return StopStale(ctx, i.DataDir())
	}
	select {
	case <-done:
		return nil
	default:
	}
	_ = proc.Signal(syscall.SIGINT)
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	case <-time.After(30 * time.Second):
	}
	_ = proc.Signal(syscall.SIGQUIT)
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		_ = proc.Kill()
		<-done
		return fmt.Errorf("instance %s: did not stop, killed", i.Name)
	}
}

// StopStale stops a postmaster that runs on dataDir but is not ours (left by a supervisor that
// died), using postmaster.pid.
func StopStale(ctx context.Context, dataDir string) error {
	pid := stalePID(dataDir)
	if pid == 0 {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGINT)
	deadline := time.Now().Add(30 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = syscall.Kill(pid, syscall.SIGQUIT)
			time.Sleep(2 * time.Second)
			if alive(pid) {
				return fmt.Errorf("postmaster %d on %s does not stop", pid, dataDir)
			}
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// StalePID returns the pid of a live postmaster running on dataDir, or 0.
func StalePID(dataDir string) int { return stalePID(dataDir) }

func stalePID(dataDir string) int {
	data, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 || !alive(pid) {
		return 0
	}
	// The pid may have been reused: it must be a postgres running on this data directory.
	cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	abs, _ := filepath.Abs(dataDir)
	if !bytes.Contains(cmdline, []byte(abs)) {
		return 0
	}
	return pid
}

func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	// A zombie is dead for our purposes.
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return false
	}
	return true
}

// Connect opens a connection as the supervisor's superuser over the unix socket (peer).
func (i *Instance) Connect(ctx context.Context, db string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable connect_timeout=5 application_name=apgstack-supervisor",
		i.SocketDir(), i.Port, postgres.Superuser, db))
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("instance %s: connect: %w", i.Name, err)
	}
	return conn, nil
}

// Health is what one query tells about a running server.
type Health struct {
	InRecovery bool
	// LSN is pg_current_wal_lsn() on a writer, pg_last_wal_replay_lsn() on a reader.
	LSN string
	// ReceiveLSN is pg_last_wal_receive_lsn() on a reader.
	ReceiveLSN string
	// ReplayDelay is now() - pg_last_xact_replay_timestamp() on a reader (0 when unknown).
	ReplayDelay time.Duration
}

// Health asks the server for its role and WAL position.
func (i *Instance) Health(ctx context.Context) (Health, error) {
	conn, err := i.Connect(ctx, "postgres")
	if err != nil {
		return Health{}, err
	}
	defer conn.Close(ctx)
	return QueryHealth(ctx, conn)
}

// QueryHealth runs the health query on an open connection.
func QueryHealth(ctx context.Context, conn *pgx.Conn) (Health, error) {
	var h Health
	var recv *string
	var delayMS *float64
	err := conn.QueryRow(ctx, `SELECT pg_is_in_recovery(),
		CASE WHEN pg_is_in_recovery() THEN coalesce(pg_last_wal_replay_lsn()::text, '') ELSE pg_current_wal_lsn()::text END,
		pg_last_wal_receive_lsn()::text,
		extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000`).Scan(&h.InRecovery, &h.LSN, &recv, &delayMS)
	if err != nil {
		return Health{}, fmt.Errorf("health query: %w", err)
	}
	if recv != nil {
		h.ReceiveLSN = *recv
	}
	if delayMS != nil && h.InRecovery {
		h.ReplayDelay = time.Duration(*delayMS) * time.Millisecond
	}
	return h, nil
}

// Activity is what a server is doing: its transactions (committed and rolled back, summed over
// its databases since statistics were reset; a rate comes from two readings) and its client
// sessions.
type Activity struct {
	Transactions int64
	Sessions     int
}

// Observe reads Health and Activity on one connection, for status. The health check itself keeps
// to QueryHealth: a query that saturation cannot slow down.
func (i *Instance) Observe(ctx context.Context) (Health, Activity, error) {
	conn, err := i.Connect(ctx, "postgres")
	if err != nil {
		return Health{}, Activity{}, err
	}
	defer conn.Close(ctx)
	h, err := QueryHealth(ctx, conn)
	if err != nil {
		return Health{}, Activity{}, err
	}
	var a Activity
	err = conn.QueryRow(ctx, `SELECT (SELECT coalesce(sum(xact_commit + xact_rollback), 0)::bigint FROM pg_stat_database),
		(SELECT count(*)::int FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid())`).Scan(&a.Transactions, &a.Sessions)
	if err != nil {
		return h, Activity{}, fmt.Errorf("activity query: %w", err)
	}
	return h, a, nil
}

// PruneLogs deletes server log files older than cutoff (rds.log_retention_period's local meaning).
func (i *Instance) PruneLogs(cutoff time.Time) (int, error) {
	files, err := filepath.Glob(filepath.Join(i.DataDir(), "log", "*"))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil || fi.IsDir() || !fi.ModTime().Before(cutoff) {
			continue
		}
		if err := os.Remove(f); err == nil {
			n++
		}
	}
	return n, nil
}
