package instance

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Processes lists the processes working in the instance's data directory: the postmaster and
// every backend and auxiliary process. PostgreSQL's children call setsid(), so they are not in
// the postmaster's process group, and once the postmaster is gone they are reparented; their
// working directory (the data directory) still names them.
func (i *Instance) Processes() []int {
	want, err := filepath.EvalSymlinks(i.DataDir())
	if err != nil {
		return nil
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []int
	for _, d := range dirs {
		cwd, err := os.Readlink(filepath.Join(d, "cwd"))
		if err != nil || cwd != want {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(d)); err == nil && pid != os.Getpid() {
			out = append(out, pid)
		}
	}
	return out
}

// fenceTimeout bounds Fence: every process is gone well before, unless one is stuck in the
// kernel.
const fenceTimeout = 10 * time.Second

// Fence makes sure nothing of this server runs: a hung postmaster (SIGSTOP) or backends it left
// behind could otherwise still commit, and would keep its shared memory so that it cannot start
// again. Every process working in the data directory is killed (we are root or the server
// account) until none is left; the error says when the postmaster started by Start has not
// exited, or a process still runs, after 10 s.
func (i *Instance) Fence() error {
	kill := func() int {
		pids := i.Processes() // zombies have no working directory: they are not listed
		select {
		case <-i.Done(): // the postmaster is reaped
		default:
			if pid := i.PID(); pid > 0 {
				pids = append(pids, pid)
			}
		}
		alive := 0
		for _, pid := range pids {
			if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
				alive++
			} else if !errors.Is(err, syscall.ESRCH) {
				i.logger().Error("fence: kill a process", "instance", i.Name, "pid", pid, "err", err)
			}
		}
		return alive
	}
	deadline := time.Now().Add(fenceTimeout)
	for kill() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if done := i.Done(); done != nil {
		select {
		case <-done:
		case <-time.After(time.Until(deadline)):
			return fmt.Errorf("instance %s: fence: the postmaster did not exit", i.Name)
		}
	}
	if left := i.Processes(); len(left) > 0 {
		return fmt.Errorf("instance %s: fence: processes %v still run", i.Name, left)
	}
	return nil
}

// Suspended reports whether the postmaster started by Start is stopped by a signal (SIGSTOP;
// state T in /proc): it still holds its port but answers nothing.
func (i *Instance) Suspended() bool { return processStopped(i.PID()) }

func processStopped(pid int) bool {
	if pid <= 0 {
		return false
	}
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && i+2 < len(stat) && (stat[i+2] == 'T' || stat[i+2] == 't')
}
