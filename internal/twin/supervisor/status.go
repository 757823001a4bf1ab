package supervisor

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/endpoint"
	"github.com/apgstack/apgstack/internal/twin/instance"
	"github.com/apgstack/apgstack/internal/twin/secretstore"
)

// OutputsFor are the database stack's outputs for the local twin of cfg in stateDir.
func OutputsFor(cfg apgstack.Config, stateDir string) api.Outputs {
	l := Layout{Root: stateDir}
	name := bestpractice.SecretName(cfg.Environment.Stage, cfg.Database.StackName)
	port := strconv.Itoa(cfg.Database.Port)
	return api.Outputs{
		ClusterEndpoint: "localhost",
		ReaderEndpoint:  "localhost",
		Port:            port,
		ReaderPort:      strconv.Itoa(cfg.ReaderPort()),
		DBUsername:      cfg.Database.Username,
		DBName:          cfg.Database.Name,
		PSQLCommandLine: fmt.Sprintf(`psql "host=localhost port=%s dbname=%s user=%s sslmode=verify-full sslrootcert=%s"`,
			port, connValue(cfg.Database.Name), connValue(cfg.Database.Username), connValue(l.CABundle())),
		URL: (&url.URL{Scheme: "postgres", User: url.User(cfg.Database.Username), Host: net.JoinHostPort("localhost", port),
			Path: "/" + cfg.Database.Name, RawQuery: url.Values{"sslmode": {"verify-full"}, "sslrootcert": {l.CABundle()}}.Encode()}).String(),
		SecretName: name,
		SecretFile: SecretPath(stateDir, name),
		CABundle:   l.CABundle(),
	}
}

// SecretPath is the file of a secret in a state directory.
func SecretPath(stateDir, name string) string {
	return secretstore.PathIn(Layout{Root: stateDir}.SecretsDir(), name)
}

// connValue quotes a libpq connection string value when it needs it.
func connValue(v string) string {
	if v != "" && !strings.ContainsAny(v, ` '\`) {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// Status implements api.Backend: the live picture, asked of the servers now.
func (s *Supervisor) Status(ctx context.Context) api.Status {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s.mu.Lock()
	st := api.Status{
		Name: s.cfg.Database.StackName, Stage: s.cfg.Environment.Stage, StateDir: s.layout.Root, Phase: s.phase, PID: os.Getpid(),
		EngineVersion: s.cfg.Database.EngineVersion, ServerVersion: s.bin.Version, VersionWarning: s.warn,
		MissingLibraries:       s.plan.MissingLibraries,
		SynchronousReplication: bestpractice.Stage(s.cfg.Environment.Stage).SynchronousReplication,
		Degraded:               s.state.Sync.Degraded, DegradedSince: s.state.Sync.DegradedSince,
		Outputs:         OutputsFor(s.cfg, s.layout.Root),
		MetricsEndpoint: s.metricsEndpointLocked(),
		PendingReboot:   maps.Clone(s.state.PendingReboot),
	}
	insts := slices.Clone(s.state.Instances)
	sync := s.state.Sync
	// Everything of the instances is read under the lock: a failover's rejoin replaces them.
	instances := maps.Clone(s.instances)
	live := map[string]bool{}
	pids := map[string]int{}
	for name, i := range s.instances {
		live[name] = i.Running()
		pids[name] = i.PID()
	}
	conds := s.conds.snapshot()
	s.mu.Unlock()

	var reps map[string]instance.Replication
	if w := s.writerInstance(); w != nil && w.Running() {
		reps, _, _ = w.Replication(ctx)
	}
	for _, in := range insts {
		out := api.Instance{Name: in.Name, Role: in.Role, Port: in.Port, PID: pids[in.Name], State: api.StateStopped}
		i := instances[in.Name]
		switch {
		case conds[in.Name].returning():
			out.State, out.Error = api.StateStarting, conds[in.Name].message()
		case conds[in.Name].kind != condNone:
			out.State, out.Error = api.StateFailed, conds[in.Name].message()
		case live[in.Name]:
			out.State = api.StateRunning
		case st.Phase == api.PhaseStarting:
			out.State = api.StateStarting
		}
		if i != nil && out.State == api.StateRunning {
			if h, a, err := i.Observe(ctx); err == nil {
				out.WALPosition = h.LSN
				out.Transactions, out.Sessions = a.Transactions, a.Sessions
			} else {
				out.Error = err.Error()
			}
		}
		if in.Role == api.RoleReader {
			if r, ok := reps[in.Name]; ok {
				lag := r.LagBytes
				out.LagBytes = &lag
				secs := 0.0
				if r.ReplayLag != nil && lag > 0 {
					secs = *r.ReplayLag
				}
				out.LagSeconds = &secs
				out.SyncState = r.SyncState
			}
			if st.SynchronousReplication {
				out.Promotable = out.State == api.StateRunning && !sync.Degraded && slices.Contains(sync.InSync, in.Name)
			} else {
				out.Promotable = out.State == api.StateRunning
			}
		}
		st.Instances = append(st.Instances, out)
	}
	for _, ep := range []struct {
		name string
		p    *endpoint.Proxy
	}{{"writer", s.writerEP}, {"reader", s.readerEP}} {
		if ep.p == nil {
			continue
		}
		n := 0
		for _, c := range ep.p.Connections() {
			n += c
		}
		path, why := ep.p.Path()
		if path == endpoint.PathKernel {
			// Connections bypass the proxy: count the sessions of the servers behind it instead.
			n = 0
			for _, in := range st.Instances {
				if slices.Contains(ep.p.Backends(), addr(in.Port)) {
					n += in.Sessions
				}
			}
		}
		st.Endpoints = append(st.Endpoints, api.Endpoint{Name: ep.name, Address: ep.p.Addr(), Backends: ep.p.Backends(), Connections: n, Path: path, PathReason: why})
	}
	return st
}
