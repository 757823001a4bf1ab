package supervisor

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Crash points: steps of a failover, a switchover, a rejoin and a secret rotation at which the
// supervisor kills itself when Options.CrashAt names one, so that tests can prove what the next
// supervisor makes of a death there. A step shared by failover and switchover fires in whichever
// runs.
const (
	CrashAfterFence           = "after-fence"            // failover: the old writer fenced, nothing promoted
	CrashAfterDrain           = "after-drain"            // switchover: the old writer checkpointed and stopped, the reader caught up
	CrashAfterPromote         = "after-promote"          // the reader promoted, the new roles not recorded yet
	CrashBeforeEndpointSwitch = "before-endpoint-switch" // the new roles recorded, the writer endpoint still on the old writer
	CrashAfterEndpointSwitch  = "after-endpoint-switch"  // the writer endpoint on the new writer, the old one not rejoined
	CrashBeforeRejoin         = "before-rejoin"          // the old writer about to be rewound
	CrashDuringRewind         = "during-rewind"          // pg_rewind running on the old writer's data
	CrashAfterRewind          = "after-rewind"           // the old writer rewound, not started as a reader yet
	CrashAfterCreateSecret    = "after-createSecret"     // rotation: AWSPENDING stored
	CrashAfterSetSecret       = "after-setSecret"        // rotation: the database has the pending password
	CrashAfterTestSecret      = "after-testSecret"       // rotation: the pending password tested
	CrashAfterFinishSecret    = "after-finishSecret"     // rotation: AWSPENDING made AWSCURRENT
)

// CrashPoints lists every crash point.
var CrashPoints = []string{CrashAfterFence, CrashAfterDrain, CrashAfterPromote, CrashBeforeEndpointSwitch,
	CrashAfterEndpointSwitch, CrashBeforeRejoin, CrashDuringRewind, CrashAfterRewind, CrashAfterCreateSecret, CrashAfterSetSecret,
	CrashAfterTestSecret, CrashAfterFinishSecret}

func checkCrashAt(at string) error {
	if at == "" || slices.Contains(CrashPoints, at) {
		return nil
	}
	return fmt.Errorf("crash point %q: allowed are %s", at, strings.Join(CrashPoints, ", "))
}

// crashWhile kills the supervisor, when step is Options.CrashAt, as soon as a process of program
// runs on dataDir (pg_rewind), so that it dies in the middle of that program's work. The returned
// function stops the watch.
func (s *Supervisor) crashWhile(step, program, dataDir string) func() {
	if s.opts.CrashAt != step {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		for {
			if running(program, dataDir) {
				s.crashPoint(step)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() { close(done) }
}

// running reports whether a process of program with dataDir in its arguments runs.
func running(program, dataDir string) bool {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		exe, _, _ := bytes.Cut(data, []byte{0})
		if filepath.Base(string(exe)) == program && bytes.Contains(data, []byte(dataDir)) {
			return true
		}
	}
	return false
}

// crashPoint kills the supervisor with SIGKILL, as kill -9 would, when step is Options.CrashAt:
// no deferred function runs, no file is closed cleanly.
func (s *Supervisor) crashPoint(step string) {
	if s.opts.CrashAt == "" || s.opts.CrashAt != step {
		return
	}
	s.log.Warn("dying at a crash point, as asked (test)", "step", step, "pid", os.Getpid())
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // SIGKILL cannot be caught: this is never left
}
