package supervisor

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/instance"
)

// uncleanStop is what a supervisor finds at start of a predecessor that did not shut down: its
// pid file left behind (it held the lock, and the lock is free now, so it is gone), and servers
// whose postmaster.pid names a process that no longer runs (PostgreSQL replays their WAL).
type uncleanStop struct {
	supervisorPID int
	crashed       []string // instances that were not shut down
	orphaned      []string // instances still serving without a supervisor
	adopted       []string // those of orphaned taken over as they ran (their sessions went on)
}

func (u uncleanStop) any() bool {
	return u.supervisorPID != 0 || len(u.crashed) > 0 || len(u.orphaned) > 0
}

// findUncleanStop looks for the traces of a predecessor that died (kill -9, power loss). It runs
// once the state directory is locked and before anything is started.
func (s *Supervisor) findUncleanStop() uncleanStop {
	var u uncleanStop
	if data, err := os.ReadFile(s.layout.PIDFile()); err == nil {
		u.supervisorPID, _ = strconv.Atoi(strings.TrimSpace(string(data)))
	}
	st, _, err := LoadState(s.layout)
	if err != nil {
		return u
	}
	for _, in := range st.Instances {
		dir := s.layout.DataDir(in.Name)
		_, err := os.Stat(dir + "/postmaster.pid")
		switch {
		case err != nil:
		case instance.StalePID(dir) != 0:
			u.orphaned = append(u.orphaned, in.Name)
		default:
			u.crashed = append(u.crashed, in.Name)
		}
	}
	return u
}

// reportRecovery says, once the cluster serves again, what was recovered from an unclean stop.
func (s *Supervisor) reportRecovery(u uncleanStop) {
	if !u.any() {
		return
	}
	what := "the twin had stopped without shutting down"
	if u.supervisorPID != 0 {
		what = fmt.Sprintf("the supervisor (pid %d) had ended without shutting down", u.supervisorPID)
	}
	msg := "recovered after an unclean stop: " + what
	if len(u.crashed) > 0 {
		msg += fmt.Sprintf("; PostgreSQL crash recovery replayed the WAL of %s, so every committed transaction is back", strings.Join(u.crashed, ", "))
	}
	var restarted []string
	for _, name := range u.orphaned {
		if !slices.Contains(u.adopted, name) {
			restarted = append(restarted, name)
		}
	}
	if len(u.adopted) > 0 {
		msg += fmt.Sprintf("; %s had kept serving without a supervisor and was adopted as it ran: sessions connected to its port went on", strings.Join(u.adopted, ", "))
	}
	if len(restarted) > 0 {
		msg += fmt.Sprintf("; %s had kept serving without a supervisor and restarted under this one", strings.Join(restarted, ", "))
	}
	s.progress("%s", msg)
	s.event(api.Event{SourceType: bestpractice.SourceCluster, SourceID: s.cfg().Database.StackName, Category: "notification", Message: msg})
	for _, name := range u.crashed {
		s.event(api.Event{SourceType: bestpractice.SourceInstance, SourceID: name, Category: "recovery",
			Message: "instance " + name + " recovered from a crash (WAL replayed)"})
	}
}
