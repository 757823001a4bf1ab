package supervisor

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestConnectionFloodIsNoDeadWriter takes every connection slot the master user may have, through
// the writer endpoint, and holds them while the health check runs several times, fresh sessions
// included: running out of connections is not a dead writer, so nothing fails over. The master
// user is what it is on Aurora (a member of rds_superuser, not a superuser), so the servers'
// superuser-reserved slots stay free for the supervisor.
func TestConnectionFloodIsNoDeadWriter(t *testing.T) {
	h := upHA(t, "pre-prod")
	before := h.writer(t)

	c := mustConnect(t, h.twin, h.cfg.Database.Port)
	var super, member bool
	if err := c.QueryRow(context.Background(), "SELECT rolsuper, pg_has_role(current_user, 'rds_superuser', 'member') FROM pg_roles WHERE rolname = current_user").Scan(&super, &member); err != nil {
		t.Fatal(err)
	}
	if super || !member {
		t.Fatalf("master user: superuser %v, member of rds_superuser %v; want what Aurora gives", super, member)
	}

	var flood []*pgx.Conn
	t.Cleanup(func() {
		for _, f := range flood {
			f.Close(context.Background())
		}
	})
	full := false
	for range 200 {
		f, err := h.connect(t, h.cfg.Database.Port, "verify-full")
		if err != nil {
			if !strings.Contains(err.Error(), "too many clients") && !strings.Contains(err.Error(), "remaining connection slots") {
				t.Fatalf("connection %d: %v", len(flood)+1, err)
			}
			full = true
			break
		}
		flood = append(flood, f)
	}
	if !full {
		t.Fatalf("%d connections and no limit reached", len(flood))
	}
	hold := 2*freshEvery + time.Duration(healthFailures)*(healthInterval+healthTimeout)
	time.Sleep(hold)

	if now := h.writer(t); now.Name != before.Name || now.PID != before.PID {
		t.Fatalf("writer %+v after %s of saturation, want %s (pid %d) still", now, hold, before.Name, before.PID)
	}
	if ev := h.events(t); strings.Contains(ev, "failover started") {
		t.Fatalf("a saturated but live writer was failed over:\n%s", ev)
	}
	t.Logf("held %d connections of the master user for %s: no failover", len(flood), hold)
}
