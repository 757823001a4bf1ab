package supervisor

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/internal/atomicfile"
	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/instance"
	"github.com/apgstack/apgstack/internal/twin/postgres"
)

// Changes a running twin takes without a restart, as RDS applies a parameter group change:
// a dynamic parameter is reloaded at once; a static one (here the engine's minor version) waits,
// shown as pending-reboot, until the instance restarts (Reboot, or the next start).
var (
	onlineFields        = []string{"database.pgauditLog"}
	pendingRebootFields = []string{"database.engineVersion"}
)

// Reconfigure applies cfg to the running twin where it differs from what runs in fields that
// need no restart; any other difference is refused (409: `apgstack up` applies it).
func (s *Supervisor) Reconfigure(ctx context.Context, cfg apgstack.Config) (api.ReconfigureResult, error) {
	s.ha.op.Lock()
	defer s.ha.op.Unlock()
	var res api.ReconfigureResult
	current := s.cfg()
	plan := s.topo.now().plan
	var reload bool
	for _, c := range apgstack.Diff(current, cfg) {
		switch {
		case slices.Contains(onlineFields, c.Path):
			reload = true
			res.Applied = append(res.Applied, c.String())
		case slices.Contains(pendingRebootFields, c.Path) && apgstack.EngineMajor(c.Old) == apgstack.EngineMajor(c.New):
			res.PendingReboot = append(res.PendingReboot, c.String())
		case c.Path == "target.local.stateDir" || c.Path == "target.local.strictVersion":
		default:
			return res, &api.OperationError{Code: http.StatusConflict, Message: c.String() + " needs a restart of the twin: `apgstack up` applies it"}
		}
	}
	if reload {
		var err error
		plan, err = postgres.PlanParameters(append(slices.Clone(bestpractice.ClusterParameters), bestpractice.InstanceParameterGroup(cfg.Database.PgauditLog)...), s.bin.HasLibrary)
		if err != nil {
			return res, err
		}
		s.setPlan(plan)
		if err := s.reloadAll(ctx); err != nil {
			return res, err
		}
		if err := s.noteParameterChanges(); err != nil {
			return res, err
		}
	}
	s.reconfigured(cfg, plan)
	if err := s.addPendingReboot(res.PendingReboot); err != nil {
		return res, err
	}
	if err := atomicfile.WriteJSON(s.layout.ConfigFile(), cfg, atomicfile.Mode(0o644)); err != nil {
		return res, err
	}
	return res, nil
}

// reloadAll rewrites every running instance's postgresql.conf from the current plan and has the
// server reload it (pg_reload_conf), as a dynamic parameter change takes effect on RDS.
func (s *Supervisor) reloadAll(ctx context.Context) error {
	cert, err := os.ReadFile(filepath.Join(s.layout.TLSDir(), "server.crt"))
	if err != nil {
		return err
	}
	key, err := os.ReadFile(filepath.Join(s.layout.TLSDir(), "server.key"))
	if err != nil {
		return err
	}
	t := s.topo.now()
	writer := t.writerInstance()
	for _, i := range t.instances {
		if !i.Running() {
			continue
		}
		var primary *postgres.Primary
		if writer != nil && i.Name != writer.Name {
			primary = &postgres.Primary{SocketDir: writer.SocketDir(), Port: writer.Port, Slot: i.Name}
		}
		if err := s.writeConfig(i, primary, cert, key); err != nil {
			return err
		}
		conn, err := i.Connect(ctx, "postgres")
		if err != nil {
			return err
		}
		_, err = conn.Exec(ctx, "SELECT pg_reload_conf()")
		conn.Close(ctx)
		if err != nil {
			return fmt.Errorf("instance %s: reload: %w", i.Name, err)
		}
	}
	return nil
}

// Reboot restarts an instance, as RDS RebootDBInstance does: a reader restarts; the writer
// restarts in place (its sessions end, the writer endpoint holds new ones meanwhile) or, with
// failover, hands over to a reader first. What was pending-reboot on it is applied.
func (s *Supervisor) Reboot(ctx context.Context, name string, failover bool) (api.RebootResult, error) {
	t := s.topo.now()
	if name == "" {
		name = t.writer().Name
	}
	role, i, phase := t.role(name), t.instances[name], t.phase
	res := api.RebootResult{Instance: name}
	switch {
	case phase != api.PhaseReady:
		return res, &api.OperationError{Code: http.StatusConflict, Message: "the cluster is " + phase + ", not ready: try again when `apgstack status` says ready"}
	case role == "" || i == nil:
		return res, &api.OperationError{Code: http.StatusBadRequest, Message: fmt.Sprintf("instance %q: no such instance (instances: %s)", name, strings.Join(t.names(), ", "))}
	case failover && role != api.RoleWriter:
		return res, &api.OperationError{Code: http.StatusBadRequest, Message: fmt.Sprintf("--failover: %s is a reader; only the writer's reboot fails over", name)}
	}
	start := time.Now()
	if failover {
		f, err := s.Failover(ctx, "")
		if err != nil {
			return res, err
		}
		res.Failover = &f
	} else {
		s.ha.op.Lock()
		err := s.restartOne(ctx, i, role == api.RoleWriter)
		s.ha.op.Unlock()
		if err != nil {
			return res, err
		}
	}
	res.Duration = time.Since(start)
	applied, err := s.takePendingReboot(name)
	res.Applied = applied
	s.instanceEvent(name, "availability", "instance %s rebooted", name)
	return res, err
}

// restartOne stops an instance cleanly and starts it again; called with s.ha.op held, so that no
// failover runs meanwhile. A writer is restarted behind the held writer endpoint.
func (s *Supervisor) restartOne(ctx context.Context, i *instance.Instance, writer bool) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
	defer cancel()
	if writer {
		t := s.holdWriter(i, true)
		defer t.resume()
		if err := i.Stop(ctx); err != nil {
			s.log.Warn("stop the writer for a reboot", "instance", i.Name, "err", err)
		}
		_, err := s.restartInPlace(ctx, t)
		return err
	}
	s.setFailed(i.Name, "rebooting") // not a dead reader for the watch
	if err := i.Stop(ctx); err != nil {
		s.log.Warn("stop the reader for a reboot", "instance", i.Name, "err", err)
	}
	if err := s.restartWithRetry(ctx, i.Name); err != nil {
		s.setFailed(i.Name, "reboot failed: "+err.Error())
		return err
	}
	return nil
}
