package instance

import (
	"os"
	"path/filepath"
	"strconv"
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
