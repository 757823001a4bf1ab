package supervisor

// An instance's condition: what keeps it from serving in its role, as one typed value per
// instance held in Supervisor.conds (under s.mu) and changed only through setCondition and
// clearCondition. Code decides on the kind, never on the message; the message is what status
// shows.

// conditionKind is the kind of an instance's condition; the zero value is none (it serves).
type conditionKind int

const (
	condNone        conditionKind = iota
	condExited                    // the postmaster exited unexpectedly (a reader is restarted after a delay)
	condFailingOver               // the writer being replaced: its sessions cut, fenced or stopping
	condDemoting                  // switchover: the old writer stopped cleanly, becoming a reader
	condFailed                    // an operation on it failed: a restart, a rejoin, a reboot
)

// condition is an instance's condition and the words status shows for it.
type condition struct {
	kind   conditionKind
	detail string // why, for condFailed
}

func (c condition) message() string {
	switch c.kind {
	case condExited:
		return "postgres exited"
	case condFailingOver:
		return "failing over"
	case condDemoting:
		return "switchover: becoming a reader"
	case condFailed:
		return c.detail
	}
	return ""
}

// setCondition records name's condition.
func (s *Supervisor) setCondition(name string, c condition) {
	s.mu.Lock()
	s.setConditionLocked(name, c)
	s.mu.Unlock()
}

// setConditionLocked is setCondition with s.mu held.
func (s *Supervisor) setConditionLocked(name string, c condition) {
	if c.kind == condNone {
		delete(s.conds, name)
		return
	}
	s.conds[name] = c
}

// clearCondition records that name serves in its role again.
func (s *Supervisor) clearCondition(name string) { s.setCondition(name, condition{}) }

// setFailed records that an operation on name failed, and why.
func (s *Supervisor) setFailed(name, why string) {
	s.setCondition(name, condition{kind: condFailed, detail: why})
}

// conditionLocked is name's condition; s.mu must be held.
func (s *Supervisor) conditionLocked(name string) condition { return s.conds[name] }
