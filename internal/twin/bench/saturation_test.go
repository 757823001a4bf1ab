package bench

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSaturationRow(t *testing.T) {
	for _, c := range []struct {
		name    string
		f       failovers
		err     error
		result  string
		verdict Verdict
		note    string
	}{
		{"none", failovers{}, nil, "0", Met, "load"},
		{"an event", failovers{events: []string{"12:00:00 apg-1: failover"}, writerChanges: 1}, nil, "1", Missed, "apg-1: failover"},
		{"writer changed without an event", failovers{writerChanges: 2}, nil, "2", Missed, "load"},
		{"load broke off", failovers{}, errors.New("pgbench: connection refused"), "0", Failed, "connection refused"},
		{"load broke off after a failover", failovers{writerChanges: 1}, errors.New("pgbench: exit 2"), "1", Missed, "exit 2"},
		{"health check failed", failovers{writerChanges: 1, instErr: "instance1: health check: timeout"}, nil, "1", Missed, "instance error: instance1: health check: timeout"},
		{"supervisor silent", failovers{pollErr: "dial unix: timeout"}, nil, "0", Met, "status: dial unix"},
	} {
		t.Run(c.name, func(t *testing.T) {
			row := saturationRow("checkpoint storm", "load", c.f, c.err)
			if row.Result != c.result || row.Verdict != c.verdict || row.Target != "0" || !strings.Contains(row.Note, c.note) ||
				row.Measure != "false failovers: checkpoint storm" {
				t.Errorf("row %+v; want result %s verdict %q note containing %q", row, c.result, c.verdict, c.note)
			}
		})
	}
}

func TestSaturationPhaseLength(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want time.Duration
	}{{Options{}, 45 * time.Second}, {Options{Quick: true}, 8 * time.Second}, {Options{Quick: true, SaturationPhase: time.Minute}, time.Minute}} {
		if got := (&runner{o: c.o}).phaseLength(); got != c.want {
			t.Errorf("%+v: phase %s, want %s", c.o, got, c.want)
		}
	}
	if err := CheckOnly([]string{ScenarioSaturation}); err != nil {
		t.Errorf("--only saturation: %v", err)
	}
}
