package supervisor

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/internal/bootstrap"
	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/rotation"
	"github.com/apgstack/apgstack/internal/twin/secretstore"
	"github.com/jackc/pgx/v5"
)

// rotationPeriod is how often secrets rotate: target.local.rotationInterval, else the database
// stack's RotationDays.
func (s *Supervisor) rotationPeriod() time.Duration {
	if d, err := time.ParseDuration(s.cfg().Target.Local.RotationInterval); err == nil && d > 0 {
		return d
	}
	return bestpractice.RotationDays * 24 * time.Hour
}

// rotatedSecret is one secret that rotates: the master's and the application roles'.
type rotatedSecret struct{ role, name string }

func (s *Supervisor) rotatedSecrets() []rotatedSecret {
	owner, rw, ro := bootstrap.RoleNames(s.cfg().Database.SchemaName())
	base := s.SecretName()
	return []rotatedSecret{{bestpractice.RoleMaster, base}, {bestpractice.RoleOwner, base + "/" + owner},
		{bestpractice.RoleReadWrite, base + "/" + rw}, {bestpractice.RoleReadOnly, base + "/" + ro}}
}

func (s *Supervisor) rotator() *rotation.Rotator {
	return &rotation.Rotator{
		Store: s.store,
		// The supervisor's own superuser over the writer's socket (peer authentication): it needs
		// no password, so rotating the master's cannot lock it out.
		Admin: func(ctx context.Context) (*pgx.Conn, error) {
			w := s.writerInstance()
			if w == nil || !w.Running() {
				return nil, fmt.Errorf("the writer is not running")
			}
			return w.Connect(ctx, "postgres")
		},
		// testSecret logs in as a client would: through the writer endpoint, TLS verify-full.
		Connect:   rotation.TLSConnector(s.layout.CABundle()),
		Log:       s.log,
		AfterStep: func(step string) { s.crashPoint("after-" + step) },
	}
}

// RotateSecret implements api.Operator: rotate role's secret (master, owner, rw, ro, all) now.
// Failures are in the results (and events); AWSCURRENT still works after one.
func (s *Supervisor) RotateSecret(ctx context.Context, role string) ([]api.Rotation, error) {
	if role == "" {
		role = "master"
	}
	var todo []rotatedSecret
	for _, rs := range s.rotatedSecrets() {
		if role == "all" || rs.role == role {
			todo = append(todo, rs)
		}
	}
	if len(todo) == 0 {
		return nil, &api.OperationError{Code: http.StatusBadRequest, Message: fmt.Sprintf("role %q: allowed are %s and all", role, strings.Join(api.RotationRoles, ", "))}
	}
	var out []api.Rotation
	for _, rs := range todo {
		out = append(out, s.rotate(ctx, rs))
	}
	return out, nil
}

// rotate runs one rotation and records it as an event.
func (s *Supervisor) rotate(ctx context.Context, rs rotatedSecret) api.Rotation {
	s.ha.rot.Lock()
	defer s.ha.rot.Unlock()
	out := api.Rotation{Role: rs.role, Secret: rs.name}
	res, err := s.rotator().Rotate(ctx, rs.name)
	if err != nil {
		out.Error = err.Error()
		s.clusterEvent("failure", "rotation of secret %s failed; its AWSCURRENT version still works: %v", rs.name, err)
		return out
	}
	out.Username, out.VersionID, out.Duration = res.Username, res.VersionID, res.Duration
	s.clusterEvent("notification", "secret %s rotated: user %s has a new password, AWSCURRENT is version %s", rs.name, res.Username, res.VersionID)
	return out
}

// resumeRotations completes, at start, the rotations a dead predecessor left halfway (an
// AWSPENDING version), so that AWSCURRENT is the password the database accepts again.
func (s *Supervisor) resumeRotations(ctx context.Context) {
	s.ha.rot.Lock()
	defer s.ha.rot.Unlock()
	for _, rs := range s.rotatedSecrets() {
		res, found, err := s.rotator().Resume(ctx, rs.name)
		switch {
		case !found:
		case err != nil:
			s.clusterEvent("failure", "an interrupted rotation of secret %s could not be completed; its AWSCURRENT version still works: %v", rs.name, err)
		default:
			s.clusterEvent("recovery", "an interrupted rotation of secret %s was completed: user %s has the AWSPENDING password, now AWSCURRENT (version %s)", rs.name, res.Username, res.VersionID)
		}
	}
}

// rotationSchedule rotates each secret when its AWSCURRENT version is a rotation period old. A
// failed rotation is tried again after a tenth of the period (at most an hour).
func (s *Supervisor) rotationSchedule(ctx context.Context) {
	period := s.rotationPeriod()
	retry := min(period/10, time.Hour)
	retryAt := map[string]time.Time{}
	for {
		next := time.Now().Add(time.Minute) // look again at least every minute
		for _, rs := range s.rotatedSecrets() {
			v, err := s.store.Get(rs.name, secretstore.Current)
			if err != nil {
				continue // not created yet
			}
			due := v.CreatedDate.Add(period)
			if t, ok := retryAt[rs.name]; ok && t.After(due) {
				due = t
			}
			if !time.Now().Before(due) && s.ready() {
				if r := s.rotate(ctx, rs); r.Error != "" {
					retryAt[rs.name] = time.Now().Add(retry)
					due = retryAt[rs.name]
				} else {
					delete(retryAt, rs.name)
					due = time.Now().Add(period)
				}
			}
			next = slices.MinFunc([]time.Time{next, due}, func(a, b time.Time) int { return a.Compare(b) })
		}
		wait := max(time.Until(next), 50*time.Millisecond)
		select {
		case <-ctx.Done():
			return
		case <-s.shutdown:
			return
		case <-time.After(wait):
		}
	}
}

func (s *Supervisor) ready() bool {
	return s.topo.now().phase == api.PhaseReady
}
