package instance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Promote turns this reader into a writer and waits until it accepts writes. The promotion
// request is repeated every 150 ms: a startup process between two attempts to stream from a dead
// writer may otherwise notice it only after a 5 s wait (seen with PostgreSQL 15).
func (i *Instance) Promote(ctx context.Context) error {
	conn, err := i.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var asked time.Time
	for {
		var inRecovery bool
		if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil {
			return fmt.Errorf("instance %s: promote: %w", i.Name, err)
		}
		if !inRecovery {
			return nil
		}
		if time.Since(asked) >= 150*time.Millisecond {
			// An error here may only mean the promotion finished meanwhile; the next round
			// tells.
			if _, err := conn.Exec(ctx, "SELECT pg_promote(false)"); err != nil && conn.IsClosed() {
				return fmt.Errorf("instance %s: promote: %w", i.Name, err)
			}
			asked = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("instance %s: promotion did not finish: %w", i.Name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Drain ends every client session of this writer, checkpoints (so that the shutdown that follows
// is quick) and returns its current WAL position.
func (i *Instance) Drain(ctx context.Context) (string, error) {
	conn, err := i.Connect(ctx, "postgres")
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	var lsn string
	_, err = conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")
	if err == nil {
		_, err = conn.Exec(ctx, "CHECKPOINT")
	}
	if err == nil {
		err = conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn)
	}
	if err != nil {
		return "", fmt.Errorf("instance %s: drain: %w", i.Name, err)
	}
	return lsn, nil
}

// Checkpoint runs CHECKPOINT.
func (i *Instance) Checkpoint(ctx context.Context) error {
	conn, err := i.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("checkpoint on %s: %w", i.Name, err)
	}
	return nil
}

// PrepareStandby clears what a former writer's data directory must not keep as a reader: its
// replication slots (they would hold WAL back forever) and its ALTER SYSTEM settings
// (synchronous_standby_names is the writer's business). The server must be stopped.
func (i *Instance) PrepareStandby() error {
	slots, _ := filepath.Glob(filepath.Join(i.DataDir(), "pg_replslot", "*"))
	for _, sl := range slots {
		if err := os.RemoveAll(sl); err != nil {
			return fmt.Errorf("remove replication slot %s: %w", sl, err)
		}
	}
	return i.WriteFile("postgresql.auto.conf", nil)
}

// StandbySignal reports whether the data directory asks to start as a standby (standby.signal).
// PostgreSQL removes the file when it is promoted, so with pg_control (ControlData) it tells what
// the data says the server is, whatever state.json recorded.
func (i *Instance) StandbySignal() bool {
	_, err := os.Stat(filepath.Join(i.DataDir(), "standby.signal"))
	return err == nil
}

// StartStandby starts the server as a hot standby (standby.signal) of the writer its
// postgresql.conf names, and waits until it accepts connections.
func (i *Instance) StartStandby(ctx context.Context) error {
	if err := i.WriteFile("standby.signal", nil); err != nil {
		return err
	}
	return i.Start(ctx)
}
