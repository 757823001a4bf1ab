package metrics

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apgstack/apgstack/internal/runas"
	"github.com/apgstack/apgstack/internal/testkit/pgtest"
)

// TestSamplerReconnectsQuietly kills the sampler's kept connection the ways a failover does — the
// server stops and comes back (a writer restarted as a reader), or its backend is terminated —
// and checks that the very next sample has its values and no error row (no "broken pipe").
func TestSamplerReconnectsQuietly(t *testing.T) {
	srv := pgtest.Start(t, pgtest.WithPreload())
	acct, err := runas.Resolve("")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	restart := func(mode string) func(t *testing.T) {
		return func(t *testing.T) {
			cmd := acct.Command(ctx, filepath.Join(srv.BinDir, "pg_ctl"), "restart", "-D", srv.DataDir, "-m", mode, "-w", "-t", "60",
				"-l", srv.LogFile, "-o", "-p "+strconv.Itoa(srv.Port))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("restart: %v: %s", err, out)
			}
		}
	}
	tests := []struct {
		name string
		kill func(t *testing.T)
	}{
		{"server restarted", restart("fast")},
		{"server crashed and came back", restart("immediate")}, // the socket just goes: broken pipe

		{"backend terminated", func(t *testing.T) {
			c := srv.Conn(t, "postgres")
			if _, err := c.Exec(ctx, "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE application_name = 'sampler'"); err != nil {
				t.Fatal(err)
			}
			_ = c.Close(ctx)
		}},
	}
	target := Target{Instance: "instance1", Role: "WRITER", DataDir: srv.DataDir,
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			return pgx.Connect(ctx, srv.ConnString("postgres")+"&application_name=sampler")
		}}
	s := NewSampler(time.Second, func() []Target { return []Target{target} })
	t.Cleanup(s.Close)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if smp := s.SampleAll(ctx)[0]; len(smp.Errors) > 0 {
				t.Fatalf("before: %v", smp.Errors)
			}
			tt.kill(t)
			smp := s.SampleAll(ctx)[0]
			if len(smp.Errors) > 0 {
				t.Errorf("sample after the connection died has errors: %s", strings.Join(smp.Errors, "; "))
			}
			if _, ok := smp.Values[MaximumUsedTransactionIDs]; !ok {
				t.Errorf("sample after the connection died lacks the SQL metrics: %+v", smp.Values)
			}
			for _, l := range s.Latest() {
				if len(l.Errors) > 0 {
					t.Errorf("latest sample of %s has errors: %v", l.Instance, l.Errors)
				}
			}
		})
	}
}
