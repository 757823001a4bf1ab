// Package postgres renders a local server's configuration — postgresql.conf, pg_hba.conf and
// pg_ident.conf — from the best-practice parameter groups. It is pure: no files, no processes.
// Every best-practice entry is mapped to its local meaning (a GUC, or for rds.* settings what the
// local twin does instead); an entry this package does not know how to realize is an error, so a
// new rds.* setting cannot be silently ignored.
package postgres

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apgstack/apgstack/bestpractice"
)

// Superuser is the bootstrap superuser initdb creates; only the supervisor uses it, over the
// instance's unix socket with peer authentication (as rdsadmin is reserved to RDS on AWS).
const Superuser = "postgres"

// IdentMap is the pg_ident.conf map that lets the supervisor's and the server's OS accounts log in
// as Superuser.
const IdentMap = "apgstack"

// GUC is one postgresql.conf line.
type GUC struct {
	Name, Value string
	Why         string
}

// Plan is the local realization of the parameter groups.
type Plan struct {
	// GUCs are the best-practice settings PostgreSQL understands, in the data's order.
	GUCs []GUC
	// ForceSSL comes from rds.force_ssl: ssl=on and TCP only as hostssl.
	ForceSSL bool
	// LogRetention comes from rds.log_retention_period: the supervisor deletes older log files.
	LogRetention time.Duration
	// MissingLibraries are preload libraries not installed here, left out of
	// shared_preload_libraries and reported by name.
	MissingLibraries []string
	// Libraries are the preload libraries that are loaded.
	Libraries []string
}

// PlanParameters maps parameter group entries to their local meaning. installed reports whether a
// shared library exists in the server's pkglibdir.
func PlanParameters(params []bestpractice.Parameter, installed func(lib string) bool) (Plan, error) {
	var p Plan
	for _, prm := range params {
		switch {
		case prm.Name == "rds.force_ssl":
			p.ForceSSL = prm.Value == "1"
		case prm.Name == "rds.log_retention_period":
			d, err := duration(prm)
			if err != nil {
				return Plan{}, err
			}
			p.LogRetention = d
		case prm.RDSOnly || strings.HasPrefix(prm.Name, "rds."):
			return Plan{}, fmt.Errorf("parameter %s: no local meaning is defined for this RDS setting", prm.Name)
		case prm.Name == "shared_preload_libraries":
			for _, lib := range splitList(prm.Value) {
				if installed(lib) {
					p.Libraries = append(p.Libraries, lib)
				} else {
					p.MissingLibraries = append(p.MissingLibraries, lib)
				}
			}
			p.GUCs = append(p.GUCs, GUC{Name: prm.Name, Value: strings.Join(p.Libraries, ","), Why: prm.Why})
		default:
			p.GUCs = append(p.GUCs, GUC{Name: prm.Name, Value: prm.Value, Why: prm.Why})
		}
	}
	return p, nil
}

func duration(p bestpractice.Parameter) (time.Duration, error) {
	n, err := strconv.ParseInt(p.Value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parameter %s: value %q is not a number: %w", p.Name, p.Value, err)
	}
	unit := map[string]time.Duration{"ms": time.Millisecond, "s": time.Second, "min": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[p.Unit]
	if unit == 0 {
		return 0, fmt.Errorf("parameter %s: unit %q is not a time unit", p.Name, p.Unit)
	}
	return time.Duration(n) * unit, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// Server is what differs between instances.
type Server struct {
	Name      string // cluster_name, and the standby's application_name
	Port      int
	SocketDir string
	CertFile  string
	KeyFile   string
	// Primary is set on a reader: where it streams from.
	Primary *Primary
	// Extra settings of other features (WAL archiving for backups, ...), rendered after the
	// best-practice entries.
	Extra []GUC
}

// Primary is a reader's upstream: the writer's unix socket and port, and the reader's slot.
type Primary struct {
	SocketDir string
	Port      int
	Slot      string
}

// Conf renders postgresql.conf: fixed local settings, replication, then the best-practice plan.
func Conf(plan Plan, s Server) string {
	var b strings.Builder
	b.WriteString("# Written by apgstack; changes are overwritten at the next start.\n")
	section := func(title string) { fmt.Fprintf(&b, "\n# %s\n", title) }
	set := func(name, value string) { fmt.Fprintf(&b, "%s = %s\n", name, Quote(value)) }

	section("Connections: TCP on loopback only, behind the supervisor's endpoints")
	set("cluster_name", s.Name)
	// Both loopback addresses, so that the endpoints' kernel redirects (which keep the address
	// family) reach the server from 127.0.0.1 and ::1 alike; without IPv6 the server starts on
	// 127.0.0.1 alone (PostgreSQL only warns about an address it cannot bind).
	set("listen_addresses", "127.0.0.1, ::1")
	set("port", strconv.Itoa(s.Port))
	set("unix_socket_directories", s.SocketDir)
	set("unix_socket_permissions", "0700")
	set("max_connections", "100")
	set("password_encryption", "scram-sha-256")

	section("TLS (rds.force_ssl)")
	set("ssl", onOff(plan.ForceSSL))
	set("ssl_cert_file", s.CertFile)
	set("ssl_key_file", s.KeyFile)
	set("ssl_min_protocol_version", "TLSv1.2")

	section("Logs in the data directory; the supervisor deletes them after rds.log_retention_period")
	set("logging_collector", "on")
	set("log_directory", "log")
	set("log_filename", "postgresql-%Y-%m-%d_%H%M%S.log")
	set("log_line_prefix", "%m [%p] %q%u@%d ")

	section("Replication: readers stream through slots; wal_log_hints lets an old writer rejoin with pg_rewind")
	set("wal_level", "replica")
	set("max_wal_senders", "10")
	set("max_replication_slots", "10")
	set("max_slot_wal_keep_size", "1GB")
	set("wal_log_hints", "on")
	set("hot_standby", "on")
	set("hot_standby_feedback", "on")
	if s.Primary != nil {
		set("primary_conninfo", fmt.Sprintf("host=%s port=%d user=%s application_name=%s",
			s.Primary.SocketDir, s.Primary.Port, Superuser, s.Name))
		set("primary_slot_name", s.Primary.Slot)
	}

	section("Best-practice parameter groups (bestpractice package)")
	for _, g := range plan.GUCs {
		if g.Why != "" {
			fmt.Fprintf(&b, "# %s\n", g.Why)
		}
		set(g.Name, g.Value)
	}
	if len(s.Extra) > 0 {
		section("Other features")
		for _, g := range s.Extra {
			if g.Why != "" {
				fmt.Fprintf(&b, "# %s\n", g.Why)
			}
			set(g.Name, g.Value)
		}
	}
	if len(plan.MissingLibraries) > 0 {
		fmt.Fprintf(&b, "# not installed on this machine, left out of shared_preload_libraries: %s\n",
			strings.Join(plan.MissingLibraries, ", "))
	}
	return b.String()
}

// Quote makes a postgresql.conf string literal.
func Quote(v string) string { return "'" + strings.ReplaceAll(v, "'", "''") + "'" }

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// HBA renders pg_hba.conf. The supervisor's superuser logs in over the unix socket (peer, through
// IdentMap), also for replication; every TCP connection must use TLS (hostssl) with SCRAM when
// forceSSL is set, and there is no other way in.
func HBA(forceSSL bool) string {
	tcp := "hostssl"
	if !forceSSL {
		tcp = "host"
	}
	lines := [][]string{
		{"local", "all", Superuser, "", "peer map=" + IdentMap},
		{"local", "replication", Superuser, "", "peer map=" + IdentMap},
		{tcp, "all", "all", "127.0.0.1/32", "scram-sha-256"},
		{tcp, "all", "all", "::1/128", "scram-sha-256"},
		{tcp, "replication", "all", "127.0.0.1/32", "scram-sha-256"},
	}
	var b strings.Builder
	b.WriteString("# Written by apgstack; changes are overwritten at the next start.\n")
	b.WriteString("# TYPE   DATABASE     USER      ADDRESS         METHOD\n")
	for _, l := range lines {
		fmt.Fprintf(&b, "%-8s %-12s %-9s %-15s %s\n", l[0], l[1], l[2], l[3], l[4])
	}
	return b.String()
}

// Ident renders pg_ident.conf: each OS account may log in as Superuser.
func Ident(osUsers []string) string {
	users := append([]string(nil), osUsers...)
	sort.Strings(users)
	var b strings.Builder
	b.WriteString("# Written by apgstack: OS accounts allowed to log in as the supervisor's superuser.\n")
	seen := map[string]bool{}
	for _, u := range users {
		if seen[u] {
			continue
		}
		seen[u] = true
		fmt.Fprintf(&b, "%s %s %s\n", IdentMap, u, Superuser)
	}
	return b.String()
}
