// Aurora's SQL functions on the twin (aurora.sql): installed on the writer at every start, the
// topology table they read kept up to date, and the fault-injection requests they make served.
// The channel and why it is safe are explained in aurora.sql, above aurora.request_fault.

package supervisor

import (
	"context"
	_ "embed"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/instance"
)

//go:embed aurora.sql
var auroraSQL string

// Advisory lock classes of the fault-injection channel (aurora.sql): the request, and the three
// answers; the second key is the requesting backend's pid.
const (
	injectRequest = 1095782480
	injectOK      = 1095782481
	injectDenied  = 1095782482
	injectFailed  = 1095782483
)

// installAurora creates or replaces the functions in the master database (idempotent).
func (s *Supervisor) installAurora(ctx context.Context, w *instance.Instance) error {
	conn, err := w.Connect(ctx, s.cfg().Database.Name)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	sql := strings.ReplaceAll(auroraSQL, "{{VERSION}}", strings.ReplaceAll(s.cfg().Database.EngineVersion, "'", ""))
	// The readers start after this: a synchronous standby named from the last run must not be
	// waited for.
	if _, err := conn.Exec(ctx, "SET synchronous_commit = local"); err != nil {
		return fmt.Errorf("install Aurora's SQL functions: %w", err)
	}
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("install Aurora's SQL functions: %w", err)
	}
	return nil
}

// auroraWatch polls every instance for fault-injection requests and keeps aurora.topology on the
// writer equal to the cluster's roles, until ctx ends.
func (s *Supervisor) auroraWatch(ctx context.Context) {
	conns := map[string]*pgx.Conn{}
	answered := map[string]map[int]int{} // instance -> pid -> answer class
	defer func() {
		for _, c := range conns {
			c.Close(context.Background())
		}
	}()
	written := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.opts.PollInterval):
		}
		t := s.topo.now()
		var names []string
		var topo []string
		for _, in := range t.state.Instances {
			names = append(names, in.Name)
			topo = append(topo, in.Name+"="+strconv.FormatBool(in.Role == api.RoleWriter))
		}
		instances := map[string]*instance.Instance{}
		for _, n := range names {
			if i := t.instances[n]; i != nil && i.Running() {
				instances[n] = i
			}
		}
		slices.Sort(topo)
		for _, name := range names {
			i := instances[name]
			c := conns[name]
			if i == nil || c != nil && c.IsClosed() {
				if c != nil {
					c.Close(ctx)
				}
				delete(conns, name)
				delete(answered, name)
				continue
			}
			if c == nil {
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				nc, err := i.Connect(cctx, s.cfg().Database.Name)
				cancel()
				if err != nil {
					continue // starting or gone; the other watches deal with it
				}
				c, conns[name] = nc, nc
				answered[name] = map[int]int{}
			}
			qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if t.role(name) == api.RoleWriter && written != strings.Join(topo, ",") {
				if err := writeTopology(qctx, c, topo); err == nil {
					written = strings.Join(topo, ",")
				} else {
					s.log.Warn("aurora.topology", "instance", name, "err", err)
				}
			}
			if err := s.serveInjections(qctx, name, c, answered[name]); err != nil && ctx.Err() == nil {
				c.Close(ctx)
				delete(conns, name)
				delete(answered, name)
			}
			cancel()
		}
	}
}

// writeTopology replaces aurora.topology's rows ("name=isWriter"). The commit does not wait for
// a synchronous reader: the table is informative, and the reader may be the one stalled.
func writeTopology(ctx context.Context, c *pgx.Conn, topo []string) error {
	tx, err := c.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it does nothing
	if _, err := tx.Exec(ctx, "SET LOCAL synchronous_commit = local"); err != nil {
		return err
	}
	var names []string
	for _, t := range topo {
		name, writer, _ := strings.Cut(t, "=")
		names = append(names, name)
		if _, err := tx.Exec(ctx, `INSERT INTO aurora.topology (server_id, is_writer) VALUES ($1, $2)
			ON CONFLICT (server_id) DO UPDATE SET is_writer = EXCLUDED.is_writer, updated_at = now()`, name, writer == "true"); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, "DELETE FROM aurora.topology WHERE server_id <> ALL($1)", names); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// serveInjections answers the fault-injection requests waiting on an instance, and releases the
// answers of requests that are gone. A request is acted on only for a session whose login role
// is a member of rds_superuser (see aurora.sql).
func (s *Supervisor) serveInjections(ctx context.Context, name string, c *pgx.Conn, answered map[int]int) error {
	rows, err := c.Query(ctx, `SELECT l.pid, a.application_name, a.usename, pg_has_role(a.usesysid, 'rds_superuser', 'MEMBER')
		FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.classid = $1 AND l.objid::bigint = l.pid AND l.objsubid = 2 AND l.granted`, injectRequest)
	if err != nil {
		return err
	}
	type request struct {
		pid       int
		app, user string
		member    bool
	}
	var reqs []request
	for rows.Next() {
		var r request
		if err := rows.Scan(&r.pid, &r.app, &r.user, &r.member); err != nil {
			return err
		}
		reqs = append(reqs, r)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	waiting := map[int]bool{}
	for _, r := range reqs {
		waiting[r.pid] = true
		if _, done := answered[r.pid]; done {
			continue
		}
		answer := injectOK
		if !r.member {
			answer = injectDenied
			s.instanceEvent(name, "notification", "fault injection refused: role %s is not a member of rds_superuser", r.user)
		} else if req, err := parseInjection(name, s.topo.now().role(name), r.app); err != nil {
			answer = injectFailed
			s.instanceEvent(name, "failure", "fault injection by %s: %v", r.user, err)
		} else if _, err := s.inject(ctx, req, "role "+r.user+" (SQL)"); err != nil {
			answer = injectFailed
			s.instanceEvent(name, "failure", "fault injection by %s: %v", r.user, err)
		} else if req.Fault == api.ChaosCrashWriter || req.Fault == api.ChaosCrashReader {
			// The crash ends the caller's session with the server, as on Aurora: no answer.
			return nil
		}
		if _, err := c.Exec(ctx, "SELECT pg_advisory_lock($1, $2)", answer, r.pid); err != nil {
			return err
		}
		answered[r.pid] = answer
	}
	for pid, class := range answered {
		if waiting[pid] {
			continue
		}
		if _, err := c.Exec(ctx, "SELECT pg_advisory_unlock($1, $2)", class, pid); err != nil {
			return err
		}
		delete(answered, pid)
	}
	return nil
}

// parseInjection reads a request from the application_name aurora.request_fault set:
// "apgstack-inject crash instance|dispatcher|node" or "apgstack-inject stall SECONDS REPLICA".
func parseInjection(instanceName, role, app string) (api.ChaosRequest, error) {
	f := strings.Fields(app)
	switch {
	case len(f) == 3 && f[0] == "apgstack-inject" && f[1] == "crash":
		// dispatcher and node have no separate process on PostgreSQL: each crashes the instance.
		if role == api.RoleWriter {
			return api.ChaosRequest{Fault: api.ChaosCrashWriter}, nil
		}
		return api.ChaosRequest{Fault: api.ChaosCrashReader, Instance: instanceName}, nil
	case len(f) == 4 && f[0] == "apgstack-inject" && f[1] == "stall":
		sec, err := strconv.Atoi(f[2])
		if err != nil {
			return api.ChaosRequest{}, fmt.Errorf("request %q: seconds: %w", app, err)
		}
		req := api.ChaosRequest{Fault: api.ChaosStallReplication, For: time.Duration(sec) * time.Second, Instance: f[3]}
		return req, req.Check()
	}
	return api.ChaosRequest{}, fmt.Errorf("request %q: not a fault the twin knows", app)
}
