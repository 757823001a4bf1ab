package instance

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/apgstack/apgstack/internal/twin/postgres"
)

// Replication is one row of a writer's pg_stat_replication.
type Replication struct {
	State, SyncState string
	ReplayLSN        string
	Flush            int64 // flush_lsn as a byte position
	LagBytes         int64 // current WAL position less replay_lsn
	ReplayLag        *float64
}

// Replication returns a writer's replication rows by application name, and its current WAL
// position as a byte position.
func (i *Instance) Replication(ctx context.Context) (map[string]Replication, int64, error) {
	conn, err := i.Connect(ctx, "postgres")
	if err != nil {
		return nil, 0, err
	}
	defer conn.Close(ctx)
	var current int64
	if err := conn.QueryRow(ctx, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint").Scan(&current); err != nil {
		return nil, 0, fmt.Errorf("writer WAL position: %w", err)
	}
	rows, err := conn.Query(ctx, `SELECT application_name, state, sync_state, coalesce(replay_lsn::text, ''),
		coalesce(pg_wal_lsn_diff(flush_lsn, '0/0'), 0)::bigint,
		coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::bigint,
		extract(epoch FROM replay_lag)::float8
		FROM pg_stat_replication`)
	if err != nil {
		return nil, 0, fmt.Errorf("pg_stat_replication: %w", err)
	}
	out := map[string]Replication{}
	for rows.Next() {
		var name string
		var r Replication
		if err := rows.Scan(&name, &r.State, &r.SyncState, &r.ReplayLSN, &r.Flush, &r.LagBytes, &r.ReplayLag); err != nil {
			return nil, 0, err
		}
		out[name] = r
	}
	return out, current, rows.Err()
}

// WaitStreaming waits until the reader name streams from this writer.
func (i *Instance) WaitStreaming(ctx context.Context, name string) error {
	for {
		reps, _, err := i.Replication(ctx)
		if err == nil && reps[name].State == "streaming" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("reader %s does not stream from the writer: %w (last: %v %+v)", name, ctx.Err(), err, reps[name])
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WaitReplayed waits until this reader has replayed WAL up to lsn, or past it when after is set
// (lsn is then the start of the last record, such as a shutdown checkpoint).
func (i *Instance) WaitReplayed(ctx context.Context, lsn string, after bool) error {
	op := ">="
	if after {
		op = ">"
	}
	var last string
	for {
		conn, err := i.Connect(ctx, "postgres")
		if err == nil {
			var ok bool
			err = conn.QueryRow(ctx, "SELECT coalesce(pg_last_wal_replay_lsn()::text, ''), coalesce(pg_last_wal_replay_lsn() "+op+" $1::pg_lsn, false)", lsn).Scan(&last, &ok)
			conn.Close(context.Background())
			if err == nil && ok {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("reader %s did not replay the writer's WAL up to %s (replayed %s, last error %v): %w", i.Name, lsn, last, err, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// EnsureSlot creates the physical replication slot on this writer unless it exists. The slot
// reserves WAL at once, so a reader made from a base backup finds every record it needs.
func (i *Instance) EnsureSlot(ctx context.Context, slot string) error {
	conn, err := i.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `SELECT pg_create_physical_replication_slot($1, true)
		WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)`, slot)
	if err != nil {
		return fmt.Errorf("replication slot %s: %w", slot, err)
	}
	return nil
}

// Slot is one replication slot.
type Slot struct {
	Name     string
	Physical bool
	Active   bool // a reader streams through it now
}

// Slots lists the server's replication slots, by name.
func (i *Instance) Slots(ctx context.Context) ([]Slot, error) {
	conn, err := i.Connect(ctx, "postgres")
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT slot_name, slot_type = 'physical', active FROM pg_replication_slots ORDER BY slot_name")
	if err != nil {
		return nil, fmt.Errorf("instance %s: list replication slots: %w", i.Name, err)
	}
	defer rows.Close()
	var out []Slot
	for rows.Next() {
		var sl Slot
		if err := rows.Scan(&sl.Name, &sl.Physical, &sl.Active); err != nil {
			return nil, err
		}
		out = append(out, sl)
	}
	return out, rows.Err()
}

// DropSlot drops a replication slot, which must not be in use.
func (i *Instance) DropSlot(ctx context.Context, slot string) error {
	conn, err := i.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_drop_replication_slot($1)", slot); err != nil {
		return fmt.Errorf("drop replication slot %s: %w", slot, err)
	}
	return nil
}

// SetSynchronousStandby names the synchronous reader on this writer ("" lets it commit alone).
// ALTER SYSTEM writes no WAL, so it never waits for the reader it is about to drop.
func (i *Instance) SetSynchronousStandby(ctx context.Context, name string) error {
	conn, err := i.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	value := ""
	if name != "" {
		value = `"` + name + `"`
	}
	if _, err := conn.Exec(ctx, "ALTER SYSTEM SET synchronous_standby_names = "+postgres.Quote(value)); err != nil {
		return fmt.Errorf("set synchronous_standby_names: %w", err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return fmt.Errorf("reload configuration: %w", err)
	}
	return nil
}

// SynchronousStandby is the synchronous_standby_names in effect, unquoted ("" when none).
func (i *Instance) SynchronousStandby(ctx context.Context) (string, error) {
	conn, err := i.Connect(ctx, "postgres")
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, "SHOW synchronous_standby_names").Scan(&v); err != nil {
		return "", fmt.Errorf("instance %s: synchronous_standby_names: %w", i.Name, err)
	}
	return strings.Trim(v, `"`), nil
}

// ParseLSN turns a WAL position "X/Y" into a byte position.
func ParseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("WAL position %q: not X/Y", s)
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("WAL position %q: %w", s, err)
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("WAL position %q: %w", s, err)
	}
	return h<<32 | l, nil
}
