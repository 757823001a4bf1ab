package writeload

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/apgstack/apgstack/internal/testkit/pgtest"
	"github.com/jackc/pgx/v5"
)

// TestLoadSurvivesTerminatedSessions kills the load's server session twice: the client reconnects,
// counts the errors and outages, and Verify finds every acknowledged id; an acknowledged id
// removed behind its back is then reported missing.
func TestLoadSurvivesTerminatedSessions(t *testing.T) {
	srv := pgtest.Start(t, pgtest.WithTLS())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin := srv.Conn(t, "postgres")
	if err := Setup(ctx, admin, "load"); err != nil {
		t.Fatal(err)
	}
	cc, err := pgx.ParseConfig(srv.ConnString("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	cc.RuntimeParams["application_name"] = "writeload"
	l, err := Start(ctx, Options{Config: cc, Table: "load"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Stop()
	want := 50
	for round := 1; round <= 2; round++ {
		if err := l.WaitAcked(ctx, want); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := admin.QueryRow(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'writeload'").Scan(&n); err != nil || n != 1 {
			t.Fatalf("terminate the load's session: %d sessions, %v", n, err)
		}
		o, err := l.WaitRecovered(ctx, round)
		if err != nil {
			t.Fatal(err)
		}
		// Writes go on after the outage.
		if _, err := l.WaitAckAfter(ctx, o.RecoveredAt.Add(time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		want = l.Stats().Acked + 50
	}
	st := l.Stop()
	if st.Errors < 2 || st.Reconnects < 2 || len(st.Outages) != 2 {
		t.Errorf("stats %+v: want at least 2 errors and reconnects, and 2 outages", st)
	}
	for _, o := range st.Outages {
		if o.RecoveredAt.IsZero() || o.Duration() <= 0 || o.FirstError == "" {
			t.Errorf("outage %+v: want recovered, with the first error", o)
		}
	}
	if st.FirstFailure != st.Outages[0].FailedAt || st.FirstSuccessAfter != st.Outages[0].RecoveredAt {
		t.Errorf("first failure/success %v/%v do not match the first outage %+v", st.FirstFailure, st.FirstSuccessAfter, st.Outages[0])
	}
	if err := l.Verify(ctx, admin); err != nil {
		t.Fatalf("verify: %v", err)
	}
	acked := l.Acked()
	if len(acked) != st.Acked {
		t.Fatalf("%d acked ids, stats say %d", len(acked), st.Acked)
	}
	if _, err := admin.Exec(ctx, "DELETE FROM load WHERE id = $1", acked[10]); err != nil {
		t.Fatal(err)
	}
	if err := l.Verify(ctx, admin); err == nil || !strings.Contains(err.Error(), "1 of") {
		t.Errorf("verify after deleting an acknowledged id: %v, want it reported missing", err)
	}
}
