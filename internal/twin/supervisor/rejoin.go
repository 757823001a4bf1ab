// Rejoin: an old writer comes back as a reader of the new one, through pg_rewind or a new base
// backup, at once after a switchover, later after an automatic failover, or at the next start
// when the supervisor stopped in between (rejoin.json).

package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/apgstack/apgstack/internal/atomicfile"
	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/instance"
)

// testHookBeforeRejoin lets tests stop the supervisor before an old writer rejoins.
var testHookBeforeRejoin func()

// rejoinLater brings the old writer back as a reader after an automatic failover, retrying.
func (s *Supervisor) rejoinLater(ctx context.Context, name string) {
	if testHookBeforeRejoin != nil {
		testHookBeforeRejoin()
	}
	for attempt := 1; ; attempt++ {
		s.ha.op.Lock()
		err := s.rejoin(ctx, name)
		s.ha.op.Unlock()
		if err == nil || ctx.Err() != nil {
			return
		}
		s.log.Error("rejoin as a reader", "instance", name, "attempt", attempt, "err", err)
		if attempt == 5 {
			s.mu.Lock()
			s.failed[name] = "rejoin as a reader failed: " + err.Error()
			s.mu.Unlock()
			s.instanceEvent(name, "failure", "instance %s could not rejoin as a reader: %v", name, err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(attempt) * time.Second):
		}
	}
}

// rejoin starts the instance name, the old writer, as a reader of the current writer: pg_rewind
// removes whatever it wrote that the new writer never received (checksums make that possible),
// or, when pg_rewind fails, a fresh base backup replaces its data. Called with s.ha.op held.
func (s *Supervisor) rejoin(ctx context.Context, name string) error {
	w := s.writerInstance()
	if w == nil || !w.Running() {
		return errors.New("no running writer to follow")
	}
	s.mu.Lock()
	var in InstanceState
	for _, x := range s.state.Instances {
		if x.Name == name {
			in = x
		}
	}
	old := s.instances[name]
	s.mu.Unlock()
	if in.Name == "" || in.Role != api.RoleReader {
		return fmt.Errorf("instance %s is not a reader", name)
	}
	if old != nil && old.Running() {
		return fmt.Errorf("instance %s still runs", name)
	}
	r := s.newInstance(in)
	how := "pg_rewind"
	if err := s.rewind(ctx, r, w); err != nil {
		if !rewindFailed(ctx, err) {
			return err
		}
		s.log.Warn("pg_rewind failed; taking a new base backup", "instance", name, "err", err)
		how = "a new base backup"
		if err := os.RemoveAll(r.DataDir()); err != nil {
			return fmt.Errorf("remove %s: %w", r.DataDir(), err)
		}
	} else if err := s.asStandby(r); err != nil {
		return err
	}
	cert, key, err := s.tlsPair()
	if err != nil {
		return err
	}
	if err := s.startReader(ctx, in, w, cert, key); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.failed, name)
	delete(s.ha.rejoining, name)
	s.mu.Unlock()
	if err := s.markRejoin(name, false); err != nil {
		s.log.Error("record the rejoin", "instance", name, "err", err)
	}
	s.updateReaderEndpoint()
	s.instanceEvent(name, "recovery", "instance %s rejoined as a reader of %s (%s)", name, w.Name, how)
	return nil
}

// rejoinFile lists the old writers that still have to rejoin as readers: a supervisor stopped
// (or dead) between a failover and the rejoin finds them there at its next start.
func (s *Supervisor) rejoinFile() string { return filepath.Join(s.layout.Root, "rejoin.json") }

func (s *Supervisor) pendingRejoins() ([]string, error) {
	data, err := os.ReadFile(s.rejoinFile())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	if err := json.Unmarshal(data, &names); err != nil {
		return nil, fmt.Errorf("%s is damaged: %w", s.rejoinFile(), err)
	}
	return names, nil
}

// markRejoin adds name to (on) or removes it from the pending rejoins. Called with s.ha.op held,
// or during start.
func (s *Supervisor) markRejoin(name string, on bool) error {
	names, err := s.pendingRejoins()
	if err != nil {
		return err
	}
	names = slices.DeleteFunc(names, func(n string) bool { return n == name })
	if on {
		names = append(names, name)
	}
	if len(names) == 0 {
		if err := os.Remove(s.rejoinFile()); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		// Durable like a write: a marker removed must not come back after a crash.
		return atomicfile.SyncDir(filepath.Dir(s.rejoinFile()))
	}
	return atomicfile.WriteJSON(s.rejoinFile(), names, atomicfile.Mode(0o644))
}

// rejoinPending prepares, at start, the data of old writers that had not rejoined: pg_rewind
// against the writer w, or, when that fails, removal so that the reader is made afresh from a
// base backup. startReader then starts them as readers.
func (s *Supervisor) rejoinPending(ctx context.Context, w *instance.Instance) error {
	names, err := s.pendingRejoins()
	if err != nil || len(names) == 0 {
		return err
	}
	for _, name := range names {
		var in InstanceState
		for _, x := range s.state.Instances {
			if x.Name == name {
				in = x
			}
		}
		if in.Role != api.RoleReader {
			continue
		}
		r := s.newInstance(in)
		s.progress("instance %s was the writer before a failover: rewinding it to follow %s", name, w.Name)
		if err := s.rewind(ctx, r, w); err != nil {
			if !rewindFailed(ctx, err) {
				return err
			}
			s.log.Warn("pg_rewind failed; the reader is made afresh from a base backup", "instance", name, "err", err)
			if err := os.RemoveAll(r.DataDir()); err != nil {
				return fmt.Errorf("remove %s: %w", r.DataDir(), err)
			}
		} else if err := s.asStandby(r); err != nil {
			return err
		}
		if err := s.markRejoin(name, false); err != nil {
			return err
		}
		s.instanceEvent(name, "recovery", "instance %s rejoins as a reader of %s at start", name, w.Name)
	}
	return nil
}

func (s *Supervisor) tlsPair() ([]byte, []byte, error) {
	cert, err := os.ReadFile(filepath.Join(s.layout.TLSDir(), "server.crt"))
	if err != nil {
		return nil, nil, fmt.Errorf("server certificate: %w", err)
	}
	key, err := os.ReadFile(filepath.Join(s.layout.TLSDir(), "server.key"))
	if err != nil {
		return nil, nil, fmt.Errorf("server key: %w", err)
	}
	return cert, key, nil
}

// errRewind marks a failure of pg_rewind itself, as opposed to one of reaching the writer or a
// cancellation: only then is the old data given up for a new base backup.
var errRewind = errors.New("pg_rewind failed")

func rewindFailed(ctx context.Context, err error) bool {
	return ctx.Err() == nil && errors.Is(err, errRewind)
}

// rewind runs pg_rewind on r's data directory against the writer w. After a clean shutdown with
// nothing to undo it finds "no rewind required".
func (s *Supervisor) rewind(ctx context.Context, r, w *instance.Instance) error {
	if !r.Initialized() {
		return fmt.Errorf("%w: no data directory", errRewind)
	}
	// pg_rewind reads the source's timeline from pg_control, which a promotion updates only with
	// its next checkpoint.
	conn, err := w.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, "CHECKPOINT")
	conn.Close(context.Background())
	if err != nil {
		return fmt.Errorf("checkpoint on %s: %w", w.Name, err)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := s.acct.Command(rctx, s.bin.Path("pg_rewind"), "--target-pgdata="+r.DataDir(),
		fmt.Sprintf("--source-server=host=%s port=%d user=postgres dbname=postgres application_name=apgstack-rewind", w.SocketDir(), w.Port))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: %s from %s: %w: %s", errRewind, r.Name, w.Name, err, strings.TrimSpace(out.String()))
	}
	s.log.Info("pg_rewind", "instance", r.Name, "source", w.Name, "output", strings.TrimSpace(out.String()))
	return nil
}

// asStandby clears what a former writer's data directory must not keep as a reader: its
// replication slots (they would hold WAL back forever) and its ALTER SYSTEM settings
// (synchronous_standby_names is the writer's business).
func (s *Supervisor) asStandby(r *instance.Instance) error {
	slots, _ := filepath.Glob(filepath.Join(r.DataDir(), "pg_replslot", "*"))
	for _, sl := range slots {
		if err := os.RemoveAll(sl); err != nil {
			return fmt.Errorf("remove replication slot %s: %w", sl, err)
		}
	}
	return r.WriteFile("postgresql.auto.conf", nil)
}
