package supervisor

import (
	"maps"
	"sync/atomic"
)

// An instance's condition: what keeps it from serving in its role, as one typed value per
// instance, owned by the conditions loop and changed only by the commands sent to it. Code decides
// on the kind, never on the message; the message is what status shows.

// conditionKind is the kind of an instance's condition; the zero value is none (it serves).
type conditionKind int

const (
	condNone        conditionKind = iota
	condExited                    // the postmaster exited unexpectedly (a reader is restarted after a delay)
	condFailingOver               // the writer being replaced: its sessions cut, fenced or stopping
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

// returning reports an old writer on its way back as a reader: status shows it starting.
func (c condition) returning() bool { return c.kind == condRejoining || c.kind == condRewinding }

func (c condition) message() string {
	switch c.kind {
	case condExited:
		return "postgres exited"
	case condFailingOver:
		return "failing over"
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

// conditions owns the instances' conditions: one goroutine (run) applies every change in the
// order sent and publishes a snapshot after each, which readers (status, the watch, the choice of
// a failover's candidate) read without a lock. A change that depends on the current condition is
// one command, so that no other change comes between the check and the change.
type conditions struct {
	cmds chan conditionCmd
	snap atomic.Pointer[map[string]condition]
	stop chan struct{} // closed when the supervisor has ended: commands are then dropped
}

type conditionCmd struct {
	apply func(map[string]condition)
	done  chan struct{}
}

func newConditions() *conditions {
	c := &conditions{cmds: make(chan conditionCmd), stop: make(chan struct{})}
	c.snap.Store(&map[string]condition{})
	go c.run()
	return c
}

func (c *conditions) run() {
	conds := map[string]condition{}
	for {
		select {
		case cmd := <-c.cmds:
			cmd.apply(conds)
			snap := maps.Clone(conds)
			c.snap.Store(&snap)
			close(cmd.done)
		case <-c.stop:
			return
		}
	}
}

// do has the loop apply f and waits until it has.
func (c *conditions) do(f func(map[string]condition)) {
	cmd := conditionCmd{apply: f, done: make(chan struct{})}
	select {
	case c.cmds <- cmd:
		<-cmd.done
	case <-c.stop:
	}
}

// close ends the loop once the supervisor has stopped everything.
func (c *conditions) close() { close(c.stop) }

// snapshot is the conditions as of the last change; it must not be modified.
func (c *conditions) snapshot() map[string]condition { return *c.snap.Load() }

// of is name's condition as of the last change.
func (c *conditions) of(name string) condition { return c.snapshot()[name] }

// setCondition records name's condition.
func (s *Supervisor) setCondition(name string, cond condition) {
	s.conds.do(func(m map[string]condition) {
		if cond.kind == condNone {
			delete(m, name)
		} else {
			m[name] = cond
		}
	})
}

// clearCondition records that name serves in its role again.
func (s *Supervisor) clearCondition(name string) { s.setCondition(name, condition{}) }

// setFailed records that an operation on name failed, and why.
func (s *Supervisor) setFailed(name, why string) {
	s.setCondition(name, condition{kind: condFailed, detail: why})
}

// markExited records as exited those of names that had no condition, and returns them: an
// instance being failed over, rejoined or already failed is someone else's to handle.
func (s *Supervisor) markExited(names []string) (marked []string) {
	s.conds.do(func(m map[string]condition) {
		for _, name := range names {
			if m[name].kind == condNone {
				m[name] = condition{kind: condExited}
				marked = append(marked, name)
			}
		}
	})
	return marked
}
