// Package api is the supervisor's control API: JSON over HTTP on a unix socket that only the
// socket's owner may open (the socket is 0600 in a 0700 directory). The types here are shared by
// the server side (the supervisor) and the typed client (Client), the only door into the daemon.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// Paths of the API, versioned so that a newer CLI can talk to an older supervisor.
const (
	PathStatus   = "/v1/status"
	PathShutdown = "/v1/shutdown"
	PathEvents   = "/v1/events"
)

// Phases of the supervisor.
const (
	PhaseStarting = "starting"
	PhaseReady    = "ready"
	PhaseStopping = "stopping"
	PhaseStopped  = "stopped"
)

// Roles and states of instances.
const (
	RoleWriter = "writer"
	RoleReader = "reader"

	StateRunning  = "running"
	StateStarting = "starting"
	StateStopped  = "stopped"
	StateFailed   = "failed"
)

// Status is the whole picture `apgstack status` shows.
type Status struct {
	Name     string `json:"name"` // the database stack's name
	Stage    string `json:"stage"`
	StateDir string `json:"stateDir"`
	Phase    string `json:"phase"`
	PID      int    `json:"pid,omitempty"` // the supervisor's

	EngineVersion string `json:"engineVersion"` // configured
	ServerVersion string `json:"serverVersion"` // running
	// VersionWarning is set when the server's major differs from the configured engine's.
	VersionWarning string `json:"versionWarning,omitempty"`
	// MissingLibraries are preload libraries of the parameter group not installed here.
	MissingLibraries []string `json:"missingLibraries,omitempty"`

	// SynchronousReplication is the stage's setting (prod); Degraded says the writer commits
	// without waiting for a reader because the reader was gone too long.
	SynchronousReplication bool       `json:"synchronousReplication"`
	Degraded               bool       `json:"degraded"`
	DegradedSince          *time.Time `json:"degradedSince,omitempty"`

	Instances []Instance `json:"instances"`
	Endpoints []Endpoint `json:"endpoints"`
	Outputs   Outputs    `json:"outputs"`
	// MetricsEndpoint is the Prometheus endpoint on loopback (http://127.0.0.1:PORT/metrics).
	MetricsEndpoint string `json:"metricsEndpoint,omitempty"`
}

// Instance is one server.
type Instance struct {
	Name  string `json:"name"`
	Role  string `json:"role"`
	State string `json:"state"`
	Port  int    `json:"port"` // internal loopback port behind the endpoints
	PID   int    `json:"pid,omitempty"`
	// WALPosition is pg_current_wal_lsn() on the writer, pg_last_wal_replay_lsn() on a reader.
	WALPosition string `json:"walPosition,omitempty"`
	// LagBytes is how far a reader's replay is behind the writer's current WAL position;
	// LagSeconds the age of the last replayed transaction when the reader is behind.
	LagBytes   *int64   `json:"lagBytes,omitempty"`
	LagSeconds *float64 `json:"lagSeconds,omitempty"`
	// SyncState is pg_stat_replication.sync_state (async, sync, ...) for a reader.
	SyncState string `json:"syncState,omitempty"`
	// Promotable says whether failover may promote this reader without losing an acknowledged
	// write: always in async stages, and in prod only while it is known to be in sync.
	Promotable bool   `json:"promotable"`
	Error      string `json:"error,omitempty"`
}

// Endpoint is a cluster or reader endpoint.
type Endpoint struct {
	Name        string   `json:"name"` // writer or reader
	Address     string   `json:"address"`
	Backends    []string `json:"backends"`
	Connections int      `json:"connections"`
}

// Outputs are the database stack's outputs, realized locally.
type Outputs struct {
	ClusterEndpoint string `json:"ClusterEndpoint"`
	ReaderEndpoint  string `json:"ReaderEndpoint"`
	Port            string `json:"Port"`
	ReaderPort      string `json:"ReaderPort"`
	DBUsername      string `json:"DBUsername"`
	DBName          string `json:"DBName"`
	PSQLCommandLine string `json:"PSQLCommandLine"`
	SecretName      string `json:"SecretName"`
	SecretFile      string `json:"SecretFile"`
	CABundle        string `json:"CABundle"`
}

// Event is one entry of the supervisor's event log.
type Event struct {
	Time       time.Time `json:"time"`
	SourceType string    `json:"sourceType"` // db-cluster, db-instance, db-parameter-group
	SourceID   string    `json:"sourceId"`
	Category   string    `json:"category"`
	Message    string    `json:"message"`
}

// Backend is what the supervisor provides to the API.
type Backend interface {
	Status(ctx context.Context) Status
	Events(ctx context.Context) ([]Event, error)
	// Shutdown asks the supervisor to stop everything and exit; it returns once the request is
	// accepted.
	Shutdown(ctx context.Context) error
}

// Handler serves the API.
func Handler(b Backend) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathStatus, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, b.Status(r.Context()))
	})
	mux.HandleFunc("GET "+PathEvents, func(w http.ResponseWriter, r *http.Request) {
		ev, err := b.Events(r.Context())
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, Error{Message: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, ev)
	})
	mux.HandleFunc("POST "+PathShutdown, func(w http.ResponseWriter, r *http.Request) {
		if err := b.Shutdown(r.Context()); err != nil {
			writeJSON(w, http.StatusInternalServerError, Error{Message: err.Error()})
			return
		}
		writeJSON(w, http.StatusAccepted, struct{}{})
	})
	handleOperations(mux, b) // failover, rotate-secret (operations.go)
	if ra, ok := b.(RouteAdder); ok {
		ra.AddRoutes(mux)
	}
	return mux
}

// RouteAdder is a Backend that serves more routes (backups, snapshots, metrics).
type RouteAdder interface {
	AddRoutes(mux *http.ServeMux)
}

// Error is the body of a failed request.
type Error struct {
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Listen opens the API socket: its directory is made 0700 and the socket 0600, both owned by the
// caller, so only the owner (root, or the user running apgstack) can control the supervisor.
// A stale socket file from a supervisor that died is replaced.
func Listen(socketPath string) (net.Listener, error) {
	dir := filepath.Dir(socketPath)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("api socket dir %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("api socket dir %s: %w", dir, err)
	}
	if _, err := os.Stat(socketPath); err == nil {
		if c, err := net.DialTimeout("unix", socketPath, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("api socket %s: a supervisor is already listening", socketPath)
		}
		_ = os.Remove(socketPath)
	}
	ln, err := net.Listen("unix", socketPath)
	if err != nil {
		return nil, fmt.Errorf("api socket %s: %w", socketPath, err)
	}
	if err := os.Chmod(socketPath, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("api socket %s: %w", socketPath, err)
	}
	return ln, nil
}

// Serve runs the API until ctx ends.
func Serve(ctx context.Context, ln net.Listener, b Backend) error {
	srv := &http.Server{Handler: Handler(b), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
