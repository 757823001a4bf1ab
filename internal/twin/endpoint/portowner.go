package endpoint

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

func isAddrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }

// PortOwner says which process listens on a TCP port ("postgres (pid 812): /usr/lib/postgresql/15/bin/postgres -D ..."),
// from /proc/net/tcp{,6} and the processes' open sockets; empty when it cannot tell (another user's
// process without the right to look).
func PortOwner(port int) string {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		for _, ino := range listeningInodes(f, port) {
			inodes[ino] = true
		}
	}
	if len(inodes) == 0 {
		return ""
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range procs {
		target, err := os.Readlink(fd)
		if err != nil || !strings.HasPrefix(target, "socket:[") {
			continue
		}
		if !inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] {
			continue
		}
		pidDir := filepath.Dir(filepath.Dir(fd))
		pid := filepath.Base(pidDir)
		comm, _ := os.ReadFile(filepath.Join(pidDir, "comm"))
		cmdline, _ := os.ReadFile(filepath.Join(pidDir, "cmdline"))
		cl := strings.Join(strings.Fields(strings.ReplaceAll(string(cmdline), "\x00", " ")), " ")
		short := cl
		if len(short) > 120 {
			short = short[:120] + "..."
		}
		desc := fmt.Sprintf("%s (pid %s): %s", strings.TrimSpace(string(comm)), pid, short)
		if m := debianCluster.FindStringSubmatch(cl); m != nil {
			desc += fmt.Sprintf(" (Debian's own PostgreSQL cluster %s/%s: stop it with `pg_ctlcluster %s %s stop`, keep it stopped with `systemctl disable postgresql@%s-%s`, or choose another database.port, e.g. --set database.port=5442)",
				m[1], m[2], m[1], m[2], m[1], m[2])
		} else if strings.Contains(cl, "postgres") {
			desc += " (another PostgreSQL server: stop it or choose another database.port, e.g. --set database.port=5442)"
		}
		return desc
	}
	return ""
}

func listeningInodes(file string, port int) []string {
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	want := fmt.Sprintf("%04X", port)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != "0A" { // 0A: LISTEN
			continue
		}
		if _, p, ok := strings.Cut(fields[1], ":"); ok && p == want {
			out = append(out, fields[9])
		}
	}
	return out
}

// debianCluster finds Debian's cluster in a postmaster's command line (-c config_file=/etc/postgresql/15/main/postgresql.conf).
var debianCluster = regexp.MustCompile(`/etc/postgresql/(\d+)/([^/\s]+)/`)

func describeOwner(port string) string {
	n, err := strconv.Atoi(port)
	if err != nil {
		return ""
	}
	if owner := PortOwner(n); owner != "" {
		return " by " + owner
	}
	return fmt.Sprintf(" (see `ss -ltnp 'sport = :%s'`; choose another database.port or target.local.readerPort)", port)
}
