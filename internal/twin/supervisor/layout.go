package supervisor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/statedir"
)

// Layout is the state directory's layout, declared in statedir.
type Layout = statedir.Layout

// State is what the supervisor remembers between runs (state.json). It holds no secret.
type State struct {
	Created          time.Time       `json:"created"`
	MasterCreated    bool            `json:"masterCreated"`
	Bootstrapped     bool            `json:"bootstrapped"`
	Instances        []InstanceState `json:"instances"`
	Sync             SyncState       `json:"sync"`
	MissingLibraries []string        `json:"missingLibraries,omitempty"`
	// PendingReboot lists, per instance, the changes it applies at its next restart (as RDS shows
	// a static parameter in pending-reboot).
	PendingReboot map[string][]string `json:"pendingReboot,omitempty"`
}

// InstanceState is one server's lasting facts.
type InstanceState struct {
	Name string `json:"name"`
	Role string `json:"role"` // api.RoleWriter or api.RoleReader
	Port int    `json:"port"`
}

// SyncState is the bookkeeping of synchronous replication (prod). It is written before the writer
// is told to stop waiting for a reader, so that a crash in between can never leave a reader
// recorded as in sync when it is not (the rule Patroni's synchronous mode follows).
type SyncState struct {
	// Standby is the reader named in synchronous_standby_names, empty when the writer commits alone.
	Standby string `json:"standby,omitempty"`
	// InSync lists the readers known to hold every acknowledged commit: only these may be promoted.
	InSync []string `json:"inSync,omitempty"`
	// Degraded: the reader was gone longer than the bound and the writer went on alone.
	Degraded      bool       `json:"degraded"`
	DegradedSince *time.Time `json:"degradedSince,omitempty"`
}

// LoadState reads state.json; a missing file is a new twin.
func LoadState(l Layout) (State, bool, error) {
	data, err := os.ReadFile(l.StateFile())
	if os.IsNotExist(err) {
		return State{}, false, nil
	}
	if err != nil {
		return State{}, false, fmt.Errorf("read state: %w", err)
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return State{}, false, fmt.Errorf("state file %s is damaged: %w", l.StateFile(), err)
	}
	return s, true, nil
}

// eventLog appends events to events.jsonl (issue "events" reads it back with filters).
type eventLog struct {
	mu   sync.Mutex
	path string
}

func (e *eventLog) add(ev api.Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(e.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("event log: %w", err)
	}
	defer f.Close()
	_, err = f.Write(append(data, '\n'))
	return err
}

// ReadEvents returns the event log of a state directory.
func ReadEvents(l Layout) ([]api.Event, error) {
	data, err := os.ReadFile(l.EventsFile())
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []api.Event
	dec := json.NewDecoder(bytes.NewReader(data))
	for dec.More() {
		var ev api.Event
		if err := dec.Decode(&ev); err != nil {
			return out, fmt.Errorf("event log %s: %w", l.EventsFile(), err)
		}
		out = append(out, ev)
	}
	return out, nil
}
