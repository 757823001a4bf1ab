package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// PathChaos injects a fault into the running twin: POST ChaosRequest → ChaosResult.
const PathChaos = "/v1/chaos"

// Faults a ChaosRequest may ask for; the supervisor's chaos.go says how each is produced. The
// SQL functions aurora_inject_* ask for the same faults.
const (
	ChaosCrashWriter      = "crash-writer"      // SIGKILL of the writer's postmaster: a failover follows
	ChaosHangWriter       = "hang-writer"       // SIGSTOP of the writer's postmaster for For, then SIGCONT
	ChaosCrashReader      = "crash-reader"      // SIGKILL of a reader's postmaster: restarted like a replaced instance
	ChaosStallReplication = "stall-replication" // SIGSTOP of a reader's WAL receiver for For
	ChaosDropConnections  = "drop-connections"  // pg_terminate_backend of every client session
)

// ChaosFaults lists the faults in the order they are documented.
var ChaosFaults = []string{ChaosCrashWriter, ChaosHangWriter, ChaosCrashReader, ChaosStallReplication, ChaosDropConnections}

// MaxChaosDuration bounds For: a longer fault is a broken twin, not a test.
const MaxChaosDuration = time.Hour

// ChaosRequest asks for a fault. For is how long hang-writer and stall-replication last;
// Instance picks the reader of crash-reader and stall-replication ("" is the first reader).
type ChaosRequest struct {
	Fault    string        `json:"fault"`
	For      time.Duration `json:"for,omitempty"`
	Instance string        `json:"instance,omitempty"`
}

// Check validates the request: the fault, the duration the fault takes, and that no duration
// is given to a fault that takes none.
func (r ChaosRequest) Check() error {
	if !slices.Contains(ChaosFaults, r.Fault) {
		return fmt.Errorf("chaos fault %q: one of %s allowed", r.Fault, strings.Join(ChaosFaults, ", "))
	}
	timed := r.Fault == ChaosHangWriter || r.Fault == ChaosStallReplication
	switch {
	case timed && (r.For <= 0 || r.For > MaxChaosDuration):
		return fmt.Errorf("chaos %s: for %s: a duration above 0 and at most %s allowed", r.Fault, r.For, MaxChaosDuration)
	case !timed && r.For != 0:
		return fmt.Errorf("chaos %s: for %s: this fault takes no duration", r.Fault, r.For)
	case r.Instance != "" && r.Fault != ChaosCrashReader && r.Fault != ChaosStallReplication:
		return fmt.Errorf("chaos %s: instance %q: only crash-reader and stall-replication name an instance", r.Fault, r.Instance)
	}
	return nil
}

// ChaosResult says what was done: the instance hit and, for drop-connections, how many sessions
// ended. It returns once the fault is injected (a timed fault goes on in the background).
type ChaosResult struct {
	Fault      string        `json:"fault"`
	Instance   string        `json:"instance,omitempty"`
	For        time.Duration `json:"for,omitempty"`
	Terminated int           `json:"terminated,omitempty"`
	Detail     string        `json:"detail"`
}

// ChaosBackend is the supervisor's side of PathChaos.
type ChaosBackend interface {
	Chaos(ctx context.Context, req ChaosRequest) (ChaosResult, error)
}

// handleChaos registers PathChaos on mux.
func handleChaos(mux *http.ServeMux, b ChaosBackend) {
	mux.HandleFunc("POST "+PathChaos, func(w http.ResponseWriter, r *http.Request) {
		var req ChaosRequest
		if !decode(w, r, &req) {
			return
		}
		if err := req.Check(); err != nil {
			fail(w, &OperationError{Code: http.StatusBadRequest, Message: err.Error()})
			return
		}
		res, err := b.Chaos(r.Context(), req)
		reply(w, res, err)
	})
}

// Chaos injects a fault (see ChaosRequest) and returns once it is injected.
func (c *Client) Chaos(ctx context.Context, req ChaosRequest) (ChaosResult, error) {
	var res ChaosResult
	return res, c.do(ctx, http.MethodPost, PathChaos, req, &res)
}
