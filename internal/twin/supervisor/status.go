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
	// One snapshot of the topology: roles, instances and conditions as of one moment, read
	// without a lock while failovers and rejoins change the next one.
	t := s.topo.now()
	cfg := t.cfg
	st := api.Status{
		Name: cfg.Database.StackName, Stage: cfg.Environment.Stage, StateDir: s.layout.Root, Phase: t.phase, PID: os.Getpid(),
		EngineVersion: cfg.Database.EngineVersion, ServerVersion: s.bin.Version, VersionWarning: s.warn,
		MissingLibraries:       t.plan.MissingLibraries,
		SynchronousReplication: bestpractice.Stage(cfg.Environment.Stage).SynchronousReplication,
		Degraded:               t.state.Sync.Degraded, DegradedSince: t.state.Sync.DegradedSince,
		Outputs:         OutputsFor(cfg, s.layout.Root),
		MetricsEndpoint: s.metricsEndpoint(),
		PendingReboot:   maps.Clone(t.state.PendingReboot),
	}
	sync := t.state.Sync

	var reps map[string]instance.Replication
	if w := t.writerInstance(); w != nil && w.Running() {
		reps, _, _ = w.Replication(ctx)
	}
	for _, in := range t.state.Instances {
		i := t.instances[in.Name]
		out := api.Instance{Name: in.Name, Role: in.Role, Port: in.Port, State: api.StateStopped}
		if i != nil {
			out.PID = i.PID()
		}
		c := t.cond(in.Name)
		switch {
		case c.starting():
			out.State, out.Error = api.StateStarting, c.message()
		case c.kind != condNone:
			out.State, out.Error = api.StateFailed, c.message()
		case i != nil && i.Running():
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
