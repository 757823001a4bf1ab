package alarm_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/internal/testkit/notifytest"
	"github.com/apgstack/apgstack/internal/testkit/pgtest"
	"github.com/apgstack/apgstack/internal/twin/observe/alarm"
	"github.com/apgstack/apgstack/internal/twin/observe/events"
	"github.com/apgstack/apgstack/internal/twin/observe/metrics"
	"github.com/apgstack/apgstack/internal/twin/observe/notify"
	"github.com/jackc/pgx/v5"
)

// TestDriveTransactionIDAlarm drives a real server's MaximumUsedTransactionIDs across an
// overridden threshold (by using transaction IDs) and back (VACUUM FREEZE of every database),
// and checks the OK -> ALARM -> OK transitions, their events and the notification of each
// received by a local SMTP server. Periods are counted on a synthetic clock: each sample stands
// for one whole period, so nothing depends on how fast the machine is.
func TestDriveTransactionIDAlarm(t *testing.T) {
	ctx := context.Background()
	srv := pgtest.Start(t, pgtest.WithPreload())
	smtp, err := notifytest.Start(0)
	if err != nil {
		t.Fatal(err)
	}
	defer smtp.Close()
	mailer, err := notify.New(notify.Options{Addr: smtp.Addr, To: "dba@example.com", Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	mctx, stopMail := context.WithCancel(ctx)
	mailDone := make(chan struct{})
	go func() { mailer.Run(mctx); close(mailDone) }()
	defer func() { stopMail(); <-mailDone }()

	sampler := metrics.NewSampler(time.Minute, func() []metrics.Target {
		return []metrics.Target{{Instance: "instance1", Role: "WRITER", DataDir: srv.DataDir,
			Connect: func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, srv.ConnString("postgres")) }}}
	})
	t.Cleanup(sampler.Close)
	base := sampler.SampleAll(ctx)[0].Values[metrics.MaximumUsedTransactionIDs]
	if base <= 0 {
		t.Fatalf("no transaction ID age sampled: %v", base)
	}

	period := time.Duration(bestpractice.Alarms[1].PeriodSeconds) * time.Second
	clock := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	ev, err := alarm.New("apgstack-database", bestpractice.Alarms, clock, alarm.WithThreshold("MaxUsedTxIDs", base+100),
		// Only the transaction ID alarm is driven: the others must not depend on this machine's load or disk.
		alarm.WithThreshold("CPU", 101), alarm.WithThreshold("FreeLocalStorage", -1))
	if err != nil {
		t.Fatal(err)
	}
	var events []events.Event
	// onePeriod samples the server as the sample of the next period and evaluates it.
	onePeriod := func() {
		smp := sampler.SampleAll(ctx)[0]
		for name, v := range smp.Values {
			ev.Observe(alarm.Sample{Time: clock.Add(time.Second), Metric: name, Role: smp.Role, Value: v})
		}
		clock = clock.Add(period)
		for _, tr := range ev.Evaluate(clock) {
			e := tr.Event()
			events = append(events, e)
			mailer.Send(notify.Message{Subject: "apgstack-database: " + tr.Name + " " + tr.To, Body: e.Message, Time: e.Time})
		}
	}
	state := func() string {
		for _, s := range ev.States() {
			if s.Name == "MaxUsedTxIDsAlarmWriter" {
				return s.State
			}
		}
		t.Fatal("no MaxUsedTxIDsAlarmWriter")
		return ""
	}

	conn := srv.Conn(t, "postgres")
	for range 150 {
		if _, err := conn.Exec(ctx, "SELECT txid_current()"); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		if state() == alarm.Alarm {
			t.Fatalf("ALARM after %d breaching periods, want 5", i)
		}
		onePeriod()
	}
	if state() != alarm.Alarm {
		t.Fatalf("state %s after 5 breaching periods: %+v", state(), ev.States())
	}

	// Freeze every database, template0 included, and the age falls back under the threshold.
	if _, err := conn.Exec(ctx, "ALTER DATABASE template0 ALLOW_CONNECTIONS true"); err != nil {
		t.Fatal(err)
	}
	for _, db := range []string{"template0", "template1", "postgres"} {
		c := srv.Conn(t, db)
		if _, err := c.Exec(ctx, "VACUUM FREEZE"); err != nil {
			t.Fatal(err)
		}
		c.Close(ctx)
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE template0 ALLOW_CONNECTIONS false"); err != nil {
		t.Fatal(err)
	}
	onePeriod()
	if state() != alarm.OK {
		t.Fatalf("state %s after the freeze: %+v", state(), ev.States())
	}

	if len(events) != 2 {
		t.Fatalf("events %+v, want the two transitions", events)
	}
	for i, want := range []string{"OK -> ALARM", "ALARM -> OK"} {
		e := events[i]
		if e.SourceType != bestpractice.SourceCluster || e.SourceID != "apgstack-database" || e.Category != "notification" ||
			!strings.Contains(e.Message, "MaxUsedTxIDsAlarmWriter") || !strings.Contains(e.Message, want) {
			t.Fatalf("event %d: %+v, want %q", i, e, want)
		}
	}
	deadline := time.After(30 * time.Second) // bounds a hang only
	for len(smtp.Messages()) < 2 {
		select {
		case <-smtp.Arrived():
		case <-deadline:
			t.Fatalf("notifications received: %d, want 2", len(smtp.Messages()))
		}
	}
	msgs := smtp.Messages()
	if len(msgs) != 2 || !strings.Contains(msgs[0].Data, "Subject: apgstack-database: MaxUsedTxIDsAlarmWriter ALARM") ||
		!strings.Contains(msgs[1].Data, "Subject: apgstack-database: MaxUsedTxIDsAlarmWriter OK") || msgs[0].To[0] != "dba@example.com" {
		t.Fatalf("notifications: %+v", msgs)
	}
}
