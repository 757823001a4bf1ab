package api

import (
	"time"

	"github.com/apgstack/apgstack/bestpractice"
)

// Kinds of failover.
const (
	// FailoverPromote: a reader was promoted and the old writer rejoins as a reader.
	FailoverPromote = "promote"
	// FailoverRestart: no reader may be promoted (dev has none), so the writer restarted in place,
	// as a single-instance Aurora cluster does.
	FailoverRestart = "restart"
)

// Failover is the outcome of a failover or a planned switchover; it holds no secret.
type Failover struct {
	Kind      string `json:"kind"`
	Planned   bool   `json:"planned"`
	OldWriter string `json:"oldWriter"`
	NewWriter string `json:"newWriter"`
	// WriterLSN is the old writer's last WAL position, replayed by the new writer before it was
	// promoted (planned switchover).
	WriterLSN string `json:"writerLsn,omitempty"`
	// Paused is how long the writer endpoint held new connections back; Duration the whole run.
	Paused   time.Duration `json:"paused"`
	Duration time.Duration `json:"duration"`
	// Rejoined says the old writer runs again as a reader.
	Rejoined bool   `json:"rejoined"`
	Warning  string `json:"warning,omitempty"`
}

// Rotation is the outcome of one secret's rotation; it holds no secret.
type Rotation struct {
	Role      string        `json:"role"` // master, owner, rw, ro
	Secret    string        `json:"secret"`
	Username  string        `json:"username"`
	VersionID string        `json:"versionId,omitempty"` // the new AWSCURRENT
	Duration  time.Duration `json:"duration"`
	Error     string        `json:"error,omitempty"`
}

// Rotation roles.
var RotationRoles = bestpractice.RotationRoles

// Error codes of operations: a request the backend cannot serve as asked (unknown role, no
// reader to switch to) is 400 or 409, a failure 500.
type OperationError struct {
	Code    int
	Message string
}

func (e *OperationError) Error() string { return e.Message }
