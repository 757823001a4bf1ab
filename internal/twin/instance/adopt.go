package instance

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Adopt takes over a postmaster left running on the data directory by a supervisor that died,
// instead of restarting it, so that the sessions connected to its port go on. It adopts only a
// server that listens on the expected port, accepts connections and is in the expected role
// (standby or not); otherwise it reports false and the caller starts the server afresh (Start
// stops what runs first). An adopted postmaster is not this process's child: its exit is seen by
// polling, and Stop signals it as it would a started one.
func (i *Instance) Adopt(ctx context.Context, standby bool) (bool, error) {
	pid := stalePID(i.DataDir())
	if pid == 0 || pidFilePort(i.DataDir()) != i.Port {
		return false, nil
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := i.Connect(cctx, "postgres")
	if err != nil {
		return false, nil // not serving: it is restarted, not adopted
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var recovering bool
	if err := conn.QueryRow(cctx, "SELECT pg_is_in_recovery()").Scan(&recovering); err != nil || recovering != standby {
		return false, nil // not the server wanted: it is restarted
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		return false, err
	}
	done := make(chan struct{})
	i.mu.Lock()
	i.proc, i.done, i.waitErr = proc, done, nil
	i.mu.Unlock()
	go func() {
		for alive(pid) {
			time.Sleep(100 * time.Millisecond)
		}
		close(done)
	}()
	i.logger().Info("postgres adopted", "instance", i.Name, "pid", pid, "port", i.Port)
	return true, nil
}

// pidFilePort is the port postmaster.pid records (its fourth line), 0 when unreadable.
func pidFilePort(dataDir string) int {
	data, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	lines := strings.Split(string(data), "\n")
	if len(lines) < 4 {
		return 0
	}
	port, _ := strconv.Atoi(strings.TrimSpace(lines[3]))
	return port
}

// PendingRestart lists the settings a reload could not apply: the server must restart for them.
func (i *Instance) PendingRestart(ctx context.Context) ([]string, error) {
	conn, err := i.Connect(ctx, "postgres")
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return nil, err
	}
	// The reload is asynchronous: the postmaster rereads the files on SIGHUP.
	time.Sleep(200 * time.Millisecond)
	rows, err := conn.Query(ctx, "SELECT name FROM pg_settings WHERE pending_restart ORDER BY name")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	return names, rows.Err()
}
