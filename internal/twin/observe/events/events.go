// Package events holds the twin's event record, shaped like an RDS event: the source type and id,
// one of the stack's event subscription categories, and a message. The supervisor appends them to
// its log; alarms and notifications produce and consume them.
package events

import "time"

// Event is one entry of the supervisor's event log.
type Event struct {
	Time       time.Time `json:"time"`
	SourceType string    `json:"sourceType"` // db-cluster, db-instance, db-parameter-group
	SourceID   string    `json:"sourceId"`
	Category   string    `json:"category"`
	Message    string    `json:"message"`
}
