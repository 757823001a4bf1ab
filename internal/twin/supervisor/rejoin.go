// Rejoin: an old writer comes back as a reader of the new one, through pg_rewind or a new base
// backup, at once after a switchover, later after an automatic failover, or at the next start
// when the supervisor stopped in between (rejoin.json).

package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/apgstack/apgstack/internal/atomicfile"
	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/instance"
)

// rejoinLater brings the old writer back as a reader after an automatic failover, retrying.
func (s *Supervisor) rejoinLater(ctx context.Context, name string) {
	if s.opts.BeforeRejoin != nil {
		s.opts.BeforeRejoin()
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
			s.setFailed(name, "rejoin as a reader failed: "+err.Error())
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

// rejoin starts the instance name, the old writer, as a reader of the current writer, its data
// rewound or replaced (prepareRejoin). Called with s.ha.op held.
func (s *Supervisor) rejoin(ctx context.Context, name string) error {
	t := s.topo.now()
	w := t.writerInstance()
	if w == nil || !w.Running() {
		return errors.New("no running writer to follow")
	}
	in, old := t.find(name), t.instances[name]
	if in.Name == "" || in.Role != api.RoleReader {
		return fmt.Errorf("instance %s is not a reader", name)
	}
	if old != nil && old.Running() {
		return fmt.Errorf("instance %s still runs", name)
	}
	s.crashPoint(CrashBeforeRejoin)
	due := condition{kind: condRejoining, detail: w.Name}
	s.setCondition(name, condition{kind: condRewinding, detail: w.Name})
	stopCrash := s.crashWhile(CrashDuringRewind, "pg_rewind", s.layout.DataDir(name))
	how, err := s.prepareRejoin(ctx, s.newInstance(in), w)
	stopCrash()
	s.setCondition(name, due) // rewound or not, it is still due to rejoin until it streams
	if err != nil {
		return err
	}
	s.crashPoint(CrashAfterRewind)
	cert, key, err := s.tlsPair()
	if err != nil {
		return err
	}
	if err := s.startReader(ctx, in, w, cert, key); err != nil {
		return err
	}
	s.clearCondition(name)
	if err := s.markRejoin(name, false); err != nil {
		s.log.Error("record the rejoin", "instance", name, "err", err)
	}
	s.instanceEvent(name, "recovery", "instance %s rejoined as a reader of %s (%s)", name, w.Name, how)
	return nil
}

// rejoinFile lists the old writers that still have to rejoin as readers: a supervisor stopped
// (or dead) between a failover and the rejoin finds them there at its next start.
func (s *Supervisor) rejoinFile() string { return s.layout.RejoinFile() }

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
		in := s.topo.now().find(name)
		if in.Role != api.RoleReader {
			continue
		}
		s.progress("instance %s was the writer before a failover: rewinding it to follow %s", name, w.Name)
		// pg_rewind needs it stopped: a second writer left running by a dead supervisor is not.
		if err := instance.StopStale(ctx, s.layout.DataDir(name)); err != nil {
			return err
		}
		if _, err := s.prepareRejoin(ctx, s.newInstance(in), w); err != nil {
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

// prepareRejoin makes the data of r, a stopped old writer, fit to follow the writer w: pg_rewind
// removes whatever r wrote that w never received (checksums make that possible); when pg_rewind
// itself fails (not reaching w, not a cancellation), the data is removed so that a new base
// backup replaces it. It says which was done.
func (s *Supervisor) prepareRejoin(ctx context.Context, r, w *instance.Instance) (string, error) {
	out, err := r.Rewind(ctx, w)
	if err == nil {
		s.log.Info("pg_rewind", "instance", r.Name, "source", w.Name, "output", out)
		return "pg_rewind", r.PrepareStandby()
	}
	if ctx.Err() != nil || !errors.Is(err, instance.ErrRewind) {
		return "", err
	}
	s.log.Warn("pg_rewind failed; the reader is made afresh from a base backup", "instance", r.Name, "err", err)
	if err := os.RemoveAll(r.DataDir()); err != nil {
		return "", fmt.Errorf("remove %s: %w", r.DataDir(), err)
	}
	return "a new base backup", nil
}

// findState is the recorded state of the instance name (zero when there is none).
func findState(list []InstanceState, name string) InstanceState {
	if i := slices.IndexFunc(list, func(in InstanceState) bool { return in.Name == name }); i >= 0 {
		return list[i]
	}
	return InstanceState{}
}
