// Package metrics samples the local twin's instances for the metrics the database stack's alarms
// and dashboards watch on AWS — CPUUtilization, MaximumUsedTransactionIDs, FreeLocalStorage,
// replica lag and DatabaseConnections — every bestpractice.SampleMetricsSeconds(stage) (60 s, or
// 1 s where enhanced monitoring is on), and serves them in the Prometheus text format.
package metrics

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Metric names, as AWS/RDS names them where it has them.
const (
	CPUUtilization            = "CPUUtilization"            // percent of all CPUs of the machine
	MaximumUsedTransactionIDs = "MaximumUsedTransactionIDs" // count
	FreeLocalStorage          = "FreeLocalStorage"          // bytes
	ReplicaLag                = "ReplicaLag"                // seconds (readers)
	ReplicaLagBytes           = "ReplicaLagBytes"           // bytes received but not yet replayed (readers)
	DatabaseConnections       = "DatabaseConnections"       // client connections
)

// Names lists the metrics in a stable order.
var Names = []string{CPUUtilization, MaximumUsedTransactionIDs, FreeLocalStorage, ReplicaLag, ReplicaLagBytes, DatabaseConnections}

// Target is one running instance to sample.
type Target struct {
	Instance string
	Role     string // WRITER or READER (the alarms' role dimension)
	DataDir  string
	// PID is the postmaster's; 0 reads it from DataDir/postmaster.pid.
	PID int
	// Connect opens a connection to the instance; the sampler keeps it between samples (a new
	// connection a second would fill the server log, which records connections) and opens a
	// new one after an error.
	Connect func(ctx context.Context) (*pgx.Conn, error)
}

// Sample is one instance's metrics at one moment. A metric that could not be read (or has no
// meaning, such as replica lag on a writer, or CPU on the first sample) is absent.
type Sample struct {
	Time     time.Time          `json:"time"`
	Instance string             `json:"instance"`
	Role     string             `json:"role"`
	Values   map[string]float64 `json:"values"`
	Errors   []string           `json:"errors,omitempty"`
}

// Sampler samples targets at an interval and keeps the latest sample of each.
type Sampler struct {
	Interval time.Duration
	Targets  func() []Target
	// OnSample, when set, receives every sample (the alarm evaluator).
	OnSample func(Sample)

	mu     sync.Mutex
	latest map[string]Sample
	prev   map[string]cpuMark
	conns  map[string]*pgx.Conn // by instance; only the sampling goroutine uses them
	clkTck float64
	ncpu   int
}

// cpuMark is a process tree's CPU time at a moment.
type cpuMark struct {
	at    time.Time
	pid   int
	ticks uint64
}

// NewSampler returns a sampler; interval is bestpractice.SampleMetricsSeconds(stage) seconds.
func NewSampler(interval time.Duration, targets func() []Target) *Sampler {
	return &Sampler{Interval: interval, Targets: targets, latest: map[string]Sample{}, prev: map[string]cpuMark{}, conns: map[string]*pgx.Conn{},
		clkTck: 100, ncpu: runtime.NumCPU()} // USER_HZ is 100 on every Linux /proc reports in
}

// Run samples until ctx ends, once at once and then every Interval.
func (s *Sampler) Run(ctx context.Context) {
	tick := time.NewTicker(s.Interval)
	defer tick.Stop()
	defer s.Close()
	for {
		s.SampleAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// SampleAll samples every target now and returns the samples.
func (s *Sampler) SampleAll(ctx context.Context) []Sample {
	targets := s.Targets()
	out := make([]Sample, 0, len(targets))
	seen := map[string]bool{}
	for _, t := range targets {
		smp := s.sample(ctx, t)
		seen[t.Instance] = true
		s.mu.Lock()
		s.latest[t.Instance] = smp
		s.mu.Unlock()
		if s.OnSample != nil {
			s.OnSample(smp)
		}
		out = append(out, smp)
	}
	s.mu.Lock()
	for name := range s.latest {
		if !seen[name] {
			delete(s.latest, name) // an instance that is gone has no current value
		}
	}
	s.mu.Unlock()
	for name, c := range s.conns {
		if !seen[name] {
			c.Close(context.Background())
			delete(s.conns, name)
		}
	}
	return out
}

// Close closes the sampler's connections (SampleAll reopens them when called again).
func (s *Sampler) Close() {
	for name, c := range s.conns {
		c.Close(context.Background())
		delete(s.conns, name)
	}
}

// Latest returns the last sample of each instance, by instance name.
func (s *Sampler) Latest() []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Sample, 0, len(s.latest))
	for _, smp := range s.latest {
		out = append(out, smp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Instance < out[j].Instance })
	return out
}

func (s *Sampler) sample(ctx context.Context, t Target) Sample {
	now := time.Now()
	smp := Sample{Time: now.UTC(), Instance: t.Instance, Role: t.Role, Values: map[string]float64{}}
	fail := func(what string, err error) { smp.Errors = append(smp.Errors, what+": "+err.Error()) }

	if cpu, ok, err := s.cpu(t, now); err != nil {
		fail(CPUUtilization, err)
	} else if ok {
		smp.Values[CPUUtilization] = cpu
	}
	if free, err := FreeBytes(t.DataDir); err != nil {
		fail(FreeLocalStorage, err)
	} else {
		smp.Values[FreeLocalStorage] = float64(free)
	}
	if t.Connect != nil {
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := s.querySample(qctx, t, smp.Values); err != nil {
			fail("query", err)
		}
		cancel()
	}
	return smp
}

// querySample reads the SQL metrics in one round trip on the instance's kept connection. The
// sampler's own connection is not counted. A kept connection that fails gets one fresh
// connection before the failure is reported: after a failover or a restart the old one is dead
// (broken pipe, terminated), which is no news to report.
func (s *Sampler) querySample(ctx context.Context, t Target, values map[string]float64) error {
	conn, kept := s.conns[t.Instance], true
	if conn == nil || conn.IsClosed() {
		kept = false
	}
	var err error
	if kept {
		if err = query(ctx, conn, t.Instance, values); err == nil {
			return nil
		}
		s.drop(t.Instance)
		if ctx.Err() != nil {
			return err
		}
	}
	if conn, err = t.Connect(ctx); err != nil {
		return err
	}
	s.conns[t.Instance] = conn
	if err = query(ctx, conn, t.Instance, values); err != nil {
		s.drop(t.Instance) // opened anew next time
	}
	return err
}

// drop closes and forgets an instance's kept connection.
func (s *Sampler) drop(instance string) {
	if c := s.conns[instance]; c != nil {
		c.Close(context.Background())
	}
	delete(s.conns, instance)
}

// query reads the SQL metrics of one instance into values.
func query(ctx context.Context, conn *pgx.Conn, instance string, values map[string]float64) error {
	var txids, conns int64
	var lag, lagBytes *float64
	err := conn.QueryRow(ctx, `SELECT
		(SELECT max(age(datfrozenxid)) FROM pg_database)::bigint,
		(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()),
		CASE WHEN pg_is_in_recovery() THEN
			CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
			ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END END::float8,
		CASE WHEN pg_is_in_recovery() THEN
			coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0) END::float8`).Scan(&txids, &conns, &lag, &lagBytes)
	if err != nil {
		return fmt.Errorf("metrics query on %s: %w", instance, err)
	}
	values[MaximumUsedTransactionIDs] = float64(txids)
	values[DatabaseConnections] = float64(conns)
	if lag != nil {
		values[ReplicaLag] = max(*lag, 0)
	}
	if lagBytes != nil {
		values[ReplicaLagBytes] = max(*lagBytes, 0)
	}
	return nil
}

// FreeBytes is the space available to unprivileged users on the file system holding dir.
func FreeBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// cpu returns the instance's CPU use since the previous sample as a percentage of all the
// machine's CPUs (as CloudWatch reports an instance's CPUUtilization over its vCPUs); ok is false
// on the first sample or after the postmaster changed.
func (s *Sampler) cpu(t Target, now time.Time) (float64, bool, error) {
	pid := t.PID
	if pid == 0 {
		var err error
		if pid, err = postmasterPID(t.DataDir); err != nil {
			return 0, false, err
		}
	}
	ticks, err := TreeTicks(pid)
	if err != nil {
		return 0, false, err
	}
	s.mu.Lock()
	prev, had := s.prev[t.Instance]
	s.prev[t.Instance] = cpuMark{at: now, pid: pid, ticks: ticks}
	s.mu.Unlock()
	elapsed := now.Sub(prev.at).Seconds()
	if !had || prev.pid != pid || ticks < prev.ticks || elapsed <= 0 {
		return 0, false, nil
	}
	pct := float64(ticks-prev.ticks) / s.clkTck / elapsed / float64(s.ncpu) * 100
	return min(pct, 100), true, nil
}

func postmasterPID(dataDir string) (int, error) {
	data, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("postmaster pid: %w", err)
	}
	first, _, _ := strings.Cut(string(data), "\n")
	return strconv.Atoi(strings.TrimSpace(first))
}

// TreeTicks is the CPU time, in clock ticks, of the postmaster pid and its processes: its own
// user and system time, that of its children that have exited (the postmaster waits for them,
// so the kernel adds them to its cutime/cstime) and that of its live children.
func TreeTicks(pid int) (uint64, error) {
	st, err := readStat(pid)
	if err != nil {
		return 0, err
	}
	total := st.utime + st.stime + st.cutime + st.cstime
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil || child == pid {
			continue
		}
		cs, err := readStat(child)
		if err != nil || cs.ppid != pid {
			continue // gone meanwhile, or not a child
		}
		total += cs.utime + cs.stime
	}
	return total, nil
}

type procStat struct {
	ppid                         int
	utime, stime, cutime, cstime uint64
}

// readStat parses /proc/<pid>/stat; the command name may hold spaces and parentheses, so fields
// are counted from the last ')'.
func readStat(pid int) (procStat, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return procStat{}, errors.New("malformed /proc stat")
	}
	// After ")": state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17).
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 15 {
		return procStat{}, errors.New("short /proc stat")
	}
	var st procStat
	st.ppid, _ = strconv.Atoi(f[1])
	nums := []*uint64{&st.utime, &st.stime, &st.cutime, &st.cstime}
	for k, p := range nums {
		v, err := strconv.ParseInt(f[11+k], 10, 64)
		if err != nil {
			return procStat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		*p = uint64(max(v, 0))
	}
	return st, nil
}
