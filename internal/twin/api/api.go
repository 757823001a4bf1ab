// Package api is the supervisor's control API: JSON over HTTP on a unix socket that only the
// socket's owner may open (the socket is 0600 in a 0700 directory). The types here are shared by
// the server side (the supervisor) and the typed client (Client), the only door into the daemon.
package api

import (
	"time"

	"github.com/apgstack/apgstack/internal/twin/observe/events"
)

// Phases of the supervisor.
const (
	PhaseStarting = "starting"
	PhaseReady    = "ready"
	PhaseStopping = "stopping"
	PhaseStopped  = "stopped"
	// PhaseRestarting: the supervisor died and its keeper is starting it again.
	PhaseRestarting = "restarting"
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
	// PendingReboot lists, per instance, the changes it applies at its next restart.
	PendingReboot map[string][]string `json:"pendingReboot,omitempty"`
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
	Promotable bool `json:"promotable"`
	// Transactions is the server's count of transactions (committed and rolled back) since its
	// statistics were reset: a rate is the difference of two readings. Sessions is its client
	// sessions (pg_stat_activity), whichever way they came in.
	Transactions int64  `json:"transactions,omitempty"`
	Sessions     int    `json:"sessions"`
	Error        string `json:"error,omitempty"`
}

// Endpoint paths: how new connections reach PostgreSQL.
const (
	EndpointPathKernel = "kernel" // an nftables redirect straight to PostgreSQL
	EndpointPathProxy  = "proxy"  // the supervisor's user-space proxy relays every byte
)

// Endpoint is a cluster or reader endpoint.
type Endpoint struct {
	Name     string   `json:"name"` // writer or reader
	Address  string   `json:"address"`
	Backends []string `json:"backends"`
	// Connections counts the proxy's connections on the proxy path, and on the kernel path (where
	// connections bypass the supervisor) the client sessions of the servers behind the endpoint.
	Connections int `json:"connections"`
	// Path is how new connections travel: "kernel" (nftables redirect) or "proxy" (user space);
	// PathReason says why (the table, or why the kernel path is not used).
	Path       string `json:"path,omitempty"`
	PathReason string `json:"pathReason,omitempty"`
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
	// URL is the writer endpoint as a libpq connection URI, without the password.
	URL        string `json:"URL"`
	SecretName string `json:"SecretName"`
	SecretFile string `json:"SecretFile"`
	CABundle   string `json:"CABundle"`
}

// Event is one entry of the supervisor's event log.
type Event = events.Event
