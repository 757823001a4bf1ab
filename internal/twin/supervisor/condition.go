package supervisor

// An instance's condition: what keeps it from serving in its role, as one typed value per
// instance, part of the topology (topology.go) and changed only by the commands sent to it. Code decides
// on the kind, never on the message; the message is what status shows.

// conditionKind is the kind of an instance's condition; the zero value is none (it serves).
type conditionKind int

const (
	condNone        conditionKind = iota
	condExited                    // the postmaster exited unexpectedly (a reader is restarted after a delay)
	condRestarting                // an exited reader being started again
	condFailingOver               // the writer being replaced: its sessions cut, stopping
	condFenced                    // a failed writer whose every process was killed, due to rejoin or restart
	condDemoting                  // switchover: the old writer stopped cleanly, becoming a reader
	condRejoining                 // an old writer due to rejoin as a reader of detail (the new writer)
	condRewinding                 // an old writer being rewound (pg_rewind) to follow detail
	condFailed                    // an operation on it failed: a restart, a rejoin, a reboot
)

// condition is an instance's condition and the words status shows for it.
type condition struct {
	kind   conditionKind
	detail string // why, for condFailed; the writer followed, for condRejoining and condRewinding
}

// starting reports an instance on its way back (an old writer becoming a reader, an exited reader
// restarted): status shows it starting.
func (c condition) starting() bool {
	return c.kind == condRejoining || c.kind == condRewinding || c.kind == condRestarting
}

func (c condition) message() string {
	switch c.kind {
	case condExited:
		return "postgres exited"
	case condRestarting:
		return "restarting after an exit"
	case condFailingOver:
		return "failing over"
	case condFenced:
		return "fenced (every process killed) during a failover"
	case condDemoting:
		return "switchover: becoming a reader"
	case condRejoining:
		return "rejoining as a reader of " + c.detail
	case condRewinding:
		return "rewinding to follow " + c.detail + " (pg_rewind)"
	case condFailed:
		return c.detail
	}
	return ""
}
