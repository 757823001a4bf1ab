// The topology: the cluster's state as one value, owned by one goroutine. It holds the
// configuration in effect, the phase, what state.json records (roles, ports, synchronous
// replication, pending reboots), the running instances, each instance's condition and which
// instance the writer endpoint leads to. Every change is one of the commands in this file, and the
// loop applies them one at a time in the order sent. A change to what state.json records is
// written (atomically, durably) by the loop before it is published; a change that could not be
// recorded is not made. The health watch, the monitor, reader restarts, rejoins, failovers, API
// requests and rotation read published snapshots without a lock and send commands. A decision
// that depends on the current state is taken inside one command, so that nothing comes between
// the check and the change. CloudNativePG's instance manager is built the same way. The
// endpoints' backends follow from the topology: the loop sets them after each change.

package supervisor

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/endpoint"
	"github.com/apgstack/apgstack/internal/twin/instance"
	"github.com/apgstack/apgstack/internal/twin/postgres"
)

// topology is one state of the cluster. A published one is never changed: the loop changes a
// copy and publishes that.
type topology struct {
	cfg       apgstack.Config
	plan      postgres.Plan
	phase     string
	state     State // what state.json records
	instances map[string]*instance.Instance
	conds     map[string]condition
	syncMark  int64    // WAL position a re-named synchronous reader must flush past
	writerTo  string   // the instance the writer endpoint leads to; empty before the first start
	adopted   []string // servers a dead supervisor left serving, taken over with their sessions
}

func (t *topology) clone() *topology {
	c := *t
	c.state.Instances = slices.Clone(t.state.Instances)
	c.state.Sync.InSync = slices.Clone(t.state.Sync.InSync)
	c.state.MissingLibraries = slices.Clone(t.state.MissingLibraries)
	if t.state.PendingReboot != nil {
		c.state.PendingReboot = map[string][]string{}
		for k, v := range t.state.PendingReboot {
			c.state.PendingReboot[k] = slices.Clone(v)
		}
	}
	c.instances = maps.Clone(t.instances)
	c.conds = maps.Clone(t.conds)
	c.adopted = slices.Clone(t.adopted)
	return &c
}

// Reading a topology.

// writer is the recorded writer (the first instance while none is recorded).
func (t *topology) writer() InstanceState {
	for _, in := range t.state.Instances {
		if in.Role == api.RoleWriter {
			return in
		}
	}
	if len(t.state.Instances) > 0 {
		return t.state.Instances[0]
	}
	return InstanceState{}
}

// writerInstance is the writer's server, nil before it was started.
func (t *topology) writerInstance() *instance.Instance { return t.instances[t.writer().Name] }

func (t *topology) find(name string) InstanceState { return findState(t.state.Instances, name) }

func (t *topology) role(name string) string { return t.find(name).Role }

func (t *topology) cond(name string) condition { return t.conds[name] }

// readers are the recorded readers, in order.
func (t *topology) readers() []InstanceState {
	var out []InstanceState
	for _, in := range t.state.Instances {
		if in.Role == api.RoleReader {
			out = append(out, in)
		}
	}
	return out
}

func (t *topology) firstReader() string {
	if r := t.readers(); len(r) > 0 {
		return r[0].Name
	}
	return ""
}

func (t *topology) names() []string {
	var out []string
	for _, in := range t.state.Instances {
		out = append(out, in.Name)
	}
	return out
}

// serving reports whether name's server runs with nothing keeping it from its role.
func (t *topology) serving(name string) bool {
	i := t.instances[name]
	return i != nil && i.Running() && t.conds[name].kind == condNone
}

// backends are the addresses the endpoints lead to: the writer endpoint to writerTo; the reader
// endpoint to the serving readers, or to the writer when none serves (as Aurora's reader endpoint
// does), with the writer as its fallback.
func (t *topology) backends() (writer, readers, fallback []string) {
	if in := t.find(t.writerTo); in.Name != "" {
		writer = []string{addr(in.Port)}
	}
	w := t.writer()
	if i := t.instances[w.Name]; i != nil && i.Running() && w.Role == api.RoleWriter {
		fallback = []string{addr(w.Port)}
	}
	for _, in := range t.readers() {
		if t.serving(in.Name) {
			readers = append(readers, addr(in.Port))
		}
	}
	if len(readers) == 0 {
		readers = fallback
	}
	return writer, readers, fallback
}

// The loop.

// topologyLoop owns the topology: run applies the commands and publishes each new state.
type topologyLoop struct {
	cmds chan topologyCmd
	snap atomic.Pointer[topology]
	stop chan struct{} // closed when the supervisor has ended: commands are then dropped

	// Touched by run only.
	save               func(State) error // state.json; nil: not recorded (tests)
	writerEP, readerEP *endpoint.Proxy
	applied            [3]string // the backends last set, joined
}

// topologyCmd is a change: apply changes the copy it is given, and says whether what state.json
// records changed; an error leaves the topology as it was.
type topologyCmd struct {
	apply func(*topology) (record bool, err error)
	// fact: the change has happened whether or not it can be recorded (a promotion): it is
	// published even when state.json cannot be written, and the write's error returned.
	fact bool
	done chan error
}

var errEnded = errors.New("the supervisor has ended")

func newTopology(t topology, save func(State) error) *topologyLoop {
	if t.instances == nil {
		t.instances = map[string]*instance.Instance{}
	}
	if t.conds == nil {
		t.conds = map[string]condition{}
	}
	l := &topologyLoop{cmds: make(chan topologyCmd), stop: make(chan struct{}), save: save}
	l.snap.Store(&t)
	go l.run()
	return l
}

func (l *topologyLoop) run() {
	for {
		select {
		case cmd := <-l.cmds:
			next := l.snap.Load().clone()
			record, err := cmd.apply(next)
			publish := err == nil
			if err == nil && record && l.save != nil {
				err = l.save(next.state)
				publish = err == nil || cmd.fact
			}
			if publish {
				l.snap.Store(next)
				l.applyEndpoints(next)
			}
			cmd.done <- err
		case <-l.stop:
			return
		}
	}
}

// applyEndpoints sets the endpoints' backends where they changed.
func (l *topologyLoop) applyEndpoints(t *topology) {
	if l.writerEP == nil || l.readerEP == nil {
		return
	}
	w, r, fb := t.backends()
	key := [3]string{strings.Join(w, ","), strings.Join(r, ","), strings.Join(fb, ",")}
	if key == l.applied {
		return
	}
	if key[0] != l.applied[0] && len(w) > 0 {
		l.writerEP.SetBackends(w)
	}
	if key[1] != l.applied[1] {
		l.readerEP.SetBackends(r)
	}
	if key[2] != l.applied[2] && len(fb) > 0 {
		l.readerEP.SetFallback(fb)
	}
	l.applied = key
}

// do has the loop apply f and waits until it has.
func (l *topologyLoop) do(f func(*topology) (bool, error)) error { return l.send(f, false) }

// doFact is do for a change that has happened (topologyCmd.fact).
func (l *topologyLoop) doFact(f func(*topology) (bool, error)) error { return l.send(f, true) }

func (l *topologyLoop) send(f func(*topology) (bool, error), fact bool) error {
	cmd := topologyCmd{apply: f, fact: fact, done: make(chan error, 1)}
	select {
	case l.cmds <- cmd:
		return <-cmd.done
	case <-l.stop:
		return errEnded
	}
}

// close ends the loop once the supervisor has stopped everything.
func (l *topologyLoop) close() { close(l.stop) }

// now is the topology as of the last change; it must not be modified.
func (l *topologyLoop) now() *topology { return l.snap.Load() }

// The commands: the only code that changes a topology.

// useEndpoints gives the loop the endpoints whose backends it keeps.
func (s *Supervisor) useEndpoints(writer, reader *endpoint.Proxy) {
	_ = s.topo.do(func(*topology) (bool, error) {
		s.topo.writerEP, s.topo.readerEP = writer, reader
		return false, nil
	})
}

func (s *Supervisor) setPhase(p string) {
	_ = s.topo.do(func(t *topology) (bool, error) { t.phase = p; return false, nil })
}

// setPlan records the parameters the servers are configured with.
func (s *Supervisor) setPlan(plan postgres.Plan) {
	_ = s.topo.do(func(t *topology) (bool, error) {
		t.plan = plan
		t.state.MissingLibraries = plan.MissingLibraries
		return false, nil
	})
}

// loadState starts from what state.json recorded (created now when there was none).
func (s *Supervisor) loadState(st State) {
	_ = s.topo.do(func(t *topology) (bool, error) { t.state = st; return false, nil })
}

// recordInstances records the instances the twin has, with their ports.
func (s *Supervisor) recordInstances(list []InstanceState) error {
	return s.topo.do(func(t *topology) (bool, error) {
		t.state.Instances = slices.Clone(list)
		return true, nil
	})
}

// addInstance makes i the server of its instance.
func (s *Supervisor) addInstance(i *instance.Instance) {
	_ = s.topo.do(func(t *topology) (bool, error) { t.instances[i.Name] = i; return false, nil })
}

// noteAdopted records that name's server, left serving by a supervisor that died, was taken over.
func (s *Supervisor) noteAdopted(name string) {
	_ = s.topo.do(func(t *topology) (bool, error) { t.adopted = append(t.adopted, name); return false, nil })
}

func (s *Supervisor) markMasterCreated() error {
	return s.topo.do(func(t *topology) (bool, error) { t.state.MasterCreated = true; return true, nil })
}

func (s *Supervisor) markBootstrapped() error {
	return s.topo.do(func(t *topology) (bool, error) { t.state.Bootstrapped = true; return true, nil })
}

// setCondition records name's condition.
func (s *Supervisor) setCondition(name string, cond condition) {
	_ = s.topo.do(func(t *topology) (bool, error) {
		if cond.kind == condNone {
			delete(t.conds, name)
		} else {
			t.conds[name] = cond
		}
		return false, nil
	})
}

// clearCondition records that name serves in its role again.
func (s *Supervisor) clearCondition(name string) { s.setCondition(name, condition{}) }

// setFailed records that an operation on name failed, and why.
func (s *Supervisor) setFailed(name, why string) {
	s.setCondition(name, condition{kind: condFailed, detail: why})
}

// observeInstances looks at every server and records what it finds, in one command: a server
// with no condition that no longer runs has exited (returned, with its role, to be reported and
// restarted); a server marked exited that runs again was restarted and serves. Seeing and
// marking in one step keeps a stale observation from marking a server exited after it was
// restarted.
func (s *Supervisor) observeInstances() (exited []InstanceState) {
	_ = s.topo.do(func(t *topology) (bool, error) {
		exited = nil
		for _, in := range t.state.Instances {
			i := t.instances[in.Name]
			if i == nil {
				continue
			}
			switch running, c := i.Running(), t.conds[in.Name]; {
			case !running && c.kind == condNone:
				t.conds[in.Name] = condition{kind: condExited}
				exited = append(exited, in)
			case running && c.kind == condExited:
				delete(t.conds, in.Name)
			}
		}
		return false, nil
	})
	return exited
}

// claimExitedReader reports whether name is still a reader that exited and that nothing else (a
// failover, a rejoin, a reboot) has taken over; if so it is marked as being restarted, so that
// one restart runs at a time.
func (s *Supervisor) claimExitedReader(name string) (claimed bool) {
	_ = s.topo.do(func(t *topology) (bool, error) {
		i := t.instances[name]
		claimed = i != nil && !i.Running() && t.conds[name].kind == condExited && t.role(name) == api.RoleReader
		if claimed {
			t.conds[name] = condition{kind: condRestarting}
		}
		return false, nil
	})
	return claimed
}

// releaseExitedReader puts a reader whose restart failed back to exited, to be tried again.
func (s *Supervisor) releaseExitedReader(name string) {
	_ = s.topo.do(func(t *topology) (bool, error) {
		if t.conds[name].kind == condRestarting {
			t.conds[name] = condition{kind: condExited}
		}
		return false, nil
	})
}

// pointWriter leads the writer endpoint to name.
func (s *Supervisor) pointWriter(name string) {
	_ = s.topo.do(func(t *topology) (bool, error) { t.writerTo = name; return false, nil })
}

// recordPromotion records newWriter as the writer and the others as readers. newWriter commits
// alone until the old writer has rejoined and caught up: in a synchronous stage the cluster counts
// as degraded until then, so that only an in-sync reader may be promoted.
func (s *Supervisor) recordPromotion(newWriter string, synchronous bool) error {
	return s.topo.doFact(func(t *topology) (bool, error) {
		setRoles(t, newWriter)
		t.state.Sync = SyncState{}
		if synchronous {
			now := time.Now().UTC()
			t.state.Sync = SyncState{Degraded: true, DegradedSince: &now}
		}
		t.syncMark = 0
		return true, nil
	})
}

// recordWriterFromData records writer as the writer, as the data directories say after an unclean
// stop (reconcile.go); nothing is known in sync then: readers prove it again once they stream.
func (s *Supervisor) recordWriterFromData(writer string) error {
	return s.topo.do(func(t *topology) (bool, error) {
		setRoles(t, writer)
		t.state.Sync.InSync = nil
		return true, nil
	})
}

func setRoles(t *topology, writer string) {
	for i := range t.state.Instances {
		if t.state.Instances[i].Name == writer {
			t.state.Instances[i].Role = api.RoleWriter
		} else {
			t.state.Instances[i].Role = api.RoleReader
		}
	}
}

// errTopologyChanged refuses a change decided on a topology whose writer has changed since.
var errTopologyChanged = errors.New("the writer changed meanwhile")

// recordSync records synchronous replication's bookkeeping as decided for the writer writer, and
// the WAL position a newly named standby must flush past. A failover in between makes the
// decision stale: it is refused (errTopologyChanged).
func (s *Supervisor) recordSync(writer string, sync SyncState, mark int64) error {
	return s.topo.do(func(t *topology) (bool, error) {
		if t.writer().Name != writer {
			return false, errTopologyChanged
		}
		t.state.Sync, t.syncMark = sync, mark
		return true, nil
	})
}

// addPendingReboot records changes each instance applies at its next restart.
func (s *Supervisor) addPendingReboot(changes []string) error {
	return s.topo.do(func(t *topology) (bool, error) {
		if len(changes) == 0 {
			return false, nil
		}
		if t.state.PendingReboot == nil {
			t.state.PendingReboot = map[string][]string{}
		}
		for _, in := range t.state.Instances {
			t.state.PendingReboot[in.Name] = append(t.state.PendingReboot[in.Name], changes...)
		}
		return true, nil
	})
}

// takePendingReboot returns and forgets what name applied by restarting.
func (s *Supervisor) takePendingReboot(name string) (applied []string, err error) {
	err = s.topo.do(func(t *topology) (bool, error) {
		applied = t.state.PendingReboot[name]
		if applied == nil {
			return false, nil
		}
		delete(t.state.PendingReboot, name)
		return true, nil
	})
	return applied, err
}

// reconfigured records the configuration and parameters a running twin now has.
func (s *Supervisor) reconfigured(cfg apgstack.Config, plan postgres.Plan) {
	_ = s.topo.do(func(t *topology) (bool, error) { t.cfg, t.plan = cfg, plan; return false, nil })
}
