package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/internal/twin/backup"
	"github.com/apgstack/apgstack/internal/twin/observe/alarm"
	"github.com/apgstack/apgstack/internal/twin/observe/metrics"
	"github.com/apgstack/apgstack/internal/twin/observe/notify"
)

// Paths of the API, versioned so that a newer CLI can talk to an older supervisor. Each has a
// typed request and response below and a method of Client; nothing else is served.
const (
	PathStatus       = "/v1/status"        // GET → Status
	PathEvents       = "/v1/events"        // GET → []Event
	PathShutdown     = "/v1/shutdown"      // POST → 202
	PathFailover     = "/v1/failover"      // POST FailoverRequest → Failover
	PathRotateSecret = "/v1/rotate-secret" // POST RotateRequest → []Rotation
	PathBackups      = "/v1/backups"       // GET → BackupInfo; POST BackupRequest → BackupInfo
	PathArchive      = "/v1/archive"       // POST → 200 once the current WAL is archived
	PathSnapshots    = "/v1/snapshots"     // GET → []Snapshot; POST SnapshotRequest → Snapshot
	PathMetrics      = "/v1/metrics"       // GET → MetricsReport
	PathReconfigure  = "/v1/configuration" // PUT ReconfigureRequest → ReconfigureResult
	PathReboot       = "/v1/reboot"        // POST RebootRequest → RebootResult
)

// ReconfigureRequest hands the running twin a changed configuration: dynamic parameters are
// reloaded at once, static ones wait for a reboot; anything else is refused (409).
type ReconfigureRequest struct {
	Config apgstack.Config `json:"config"`
}

// ReconfigureResult says what was applied and what waits for a reboot ("field old -> new").
type ReconfigureResult struct {
	Applied       []string `json:"applied"`
	PendingReboot []string `json:"pendingReboot"`
}

// RebootRequest asks for an instance's restart ("" is the writer), through a failover for the
// writer when Failover is set (RDS RebootDBInstance --force-failover).
type RebootRequest struct {
	Instance string `json:"instance,omitempty"`
	Failover bool   `json:"failover,omitempty"`
}

// RebootResult is what a reboot did; Applied lists the pending changes it applied.
type RebootResult struct {
	Instance string        `json:"instance"`
	Failover *Failover     `json:"failover,omitempty"`
	Applied  []string      `json:"applied,omitempty"`
	Duration time.Duration `json:"duration"`
}

// The response types of backups, snapshots and metrics are the owning packages' own records.
type (
	BackupInfo        = backup.Info
	BackupSet         = backup.Set
	Snapshot          = backup.Snapshot
	Sample            = metrics.Sample
	AlarmState        = alarm.State
	NotificationStats = notify.Stats
)

// Backup types a BackupRequest may ask for.
const (
	BackupFull = backup.Full
	BackupDiff = backup.Diff
	BackupIncr = backup.Incr
)

// FailoverRequest asks for a planned switchover to Target (a reader's name, or "" for the best).
type FailoverRequest struct {
	Target string `json:"target,omitempty"`
}

// RotateRequest asks for the rotation of Role's secret (one of RotationRoles, or "all").
type RotateRequest struct {
	Role string `json:"role"`
}

// BackupRequest asks for a backup of a type (full, diff, incr; "" lets the supervisor choose).
type BackupRequest struct {
	Type string `json:"type,omitempty"`
}

// SnapshotRequest asks for a snapshot.
type SnapshotRequest struct {
	Name string `json:"name"`
	Kind string `json:"kind,omitempty"` // manual (default) or final
}

// MetricsReport is what `apgstack metrics` shows.
type MetricsReport struct {
	Cluster       string             `json:"cluster"`
	Endpoint      string             `json:"prometheusEndpoint"`
	Interval      string             `json:"sampleInterval"`
	Samples       []Sample           `json:"samples"`
	Alarms        []AlarmState       `json:"alarms"`
	Notifications *NotificationStats `json:"notifications,omitempty"`
}

// Backend is what the supervisor provides to the API: one method per route. An error that is an
// *OperationError carries its HTTP status (400 bad request, 409 conflict, 503 not ready); any
// other error is a 500.
type Backend interface {
	Status(ctx context.Context) Status
	Events(ctx context.Context) ([]Event, error)
	// Shutdown asks the supervisor to stop everything and exit; it returns once the request is
	// accepted.
	Shutdown(ctx context.Context) error
	// Failover performs a planned switchover to target (a reader's name, or "" for the best one).
	Failover(ctx context.Context, target string) (Failover, error)
	// RotateSecret rotates the secret of role (one of RotationRoles, or "all") now.
	RotateSecret(ctx context.Context, role string) ([]Rotation, error)
	Backups(ctx context.Context) (BackupInfo, error)
	BackupNow(ctx context.Context, typ string) (BackupInfo, error)
	// ArchiveNow returns once every transaction committed before the call is archived.
	ArchiveNow(ctx context.Context) error
	Snapshots(ctx context.Context) ([]Snapshot, error)
	CreateSnapshot(ctx context.Context, name, kind string) (Snapshot, error)
	Metrics(ctx context.Context) MetricsReport
	Reconfigure(ctx context.Context, cfg apgstack.Config) (ReconfigureResult, error)
	Reboot(ctx context.Context, instance string, failover bool) (RebootResult, error)
	ChaosBackend // chaos.go
}

// Handler serves the API.
func Handler(b Backend) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathStatus, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, b.Status(r.Context()))
	})
	mux.HandleFunc("GET "+PathEvents, func(w http.ResponseWriter, r *http.Request) {
		ev, err := b.Events(r.Context())
		if ev == nil {
			ev = []Event{}
		}
		reply(w, ev, err)
	})
	mux.HandleFunc("POST "+PathShutdown, func(w http.ResponseWriter, r *http.Request) {
		if err := b.Shutdown(r.Context()); err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, http.StatusAccepted, struct{}{})
	})
	mux.HandleFunc("POST "+PathFailover, func(w http.ResponseWriter, r *http.Request) {
		var req FailoverRequest
		if decode(w, r, &req) {
			res, err := b.Failover(r.Context(), req.Target)
			reply(w, res, err)
		}
	})
	mux.HandleFunc("POST "+PathRotateSecret, func(w http.ResponseWriter, r *http.Request) {
		var req RotateRequest
		if decode(w, r, &req) {
			res, err := b.RotateSecret(r.Context(), req.Role)
			reply(w, res, err)
		}
	})
	mux.HandleFunc("GET "+PathBackups, func(w http.ResponseWriter, r *http.Request) {
		info, err := b.Backups(r.Context())
		reply(w, info, err)
	})
	mux.HandleFunc("POST "+PathBackups, func(w http.ResponseWriter, r *http.Request) {
		var req BackupRequest
		if !decode(w, r, &req) {
			return
		}
		switch req.Type {
		case "", BackupFull, BackupDiff, BackupIncr:
		default:
			fail(w, &OperationError{Code: http.StatusBadRequest, Message: fmt.Sprintf("backup type %q: full, diff or incr allowed", req.Type)})
			return
		}
		info, err := b.BackupNow(r.Context(), req.Type)
		reply(w, info, err)
	})
	mux.HandleFunc("POST "+PathArchive, func(w http.ResponseWriter, r *http.Request) {
		reply(w, struct{}{}, b.ArchiveNow(r.Context()))
	})
	mux.HandleFunc("GET "+PathSnapshots, func(w http.ResponseWriter, r *http.Request) {
		list, err := b.Snapshots(r.Context())
		if list == nil {
			list = []Snapshot{}
		}
		reply(w, list, err)
	})
	mux.HandleFunc("POST "+PathSnapshots, func(w http.ResponseWriter, r *http.Request) {
		var req SnapshotRequest
		if !decode(w, r, &req) {
			return
		}
		if err := backup.CheckSnapshotName(req.Name); err != nil {
			fail(w, &OperationError{Code: http.StatusBadRequest, Message: err.Error()})
			return
		}
		if req.Kind == "" {
			req.Kind = "manual"
		}
		sn, err := b.CreateSnapshot(r.Context(), req.Name, req.Kind)
		reply(w, sn, err)
	})
	mux.HandleFunc("GET "+PathMetrics, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, b.Metrics(r.Context()))
	})
	mux.HandleFunc("PUT "+PathReconfigure, func(w http.ResponseWriter, r *http.Request) {
		var req ReconfigureRequest
		if decode(w, r, &req) {
			res, err := b.Reconfigure(r.Context(), req.Config)
			reply(w, res, err)
		}
	})
	mux.HandleFunc("POST "+PathReboot, func(w http.ResponseWriter, r *http.Request) {
		var req RebootRequest
		if decode(w, r, &req) {
			res, err := b.Reboot(r.Context(), req.Instance, req.Failover)
			reply(w, res, err)
		}
	})
	handleChaos(mux, b)
	return mux
}

// decode reads a JSON request body (an empty body is the zero request); it answers 400 and
// returns false when the body is not valid.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if r.ContentLength == 0 {
		return true
	}
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		fail(w, &OperationError{Code: http.StatusBadRequest, Message: "request: " + err.Error()})
		return false
	}
	return true
}

func reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func fail(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var oe *OperationError
	if errors.As(err, &oe) {
		code = oe.Code
	}
	writeJSON(w, code, Error{Message: err.Error()})
}

// Names of the metrics a MetricsReport carries that a reader formats with a unit.
const (
	MetricCPUUtilization   = metrics.CPUUtilization
	MetricFreeLocalStorage = metrics.FreeLocalStorage
	MetricReplicaLag       = metrics.ReplicaLag
	MetricReplicaLagBytes  = metrics.ReplicaLagBytes
)

// MetricNames lists the sampled metrics in the order they are shown.
func MetricNames() []string { return slices.Clone(metrics.Names) }
