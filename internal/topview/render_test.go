package topview

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apgstack/apgstack/internal/twin/api"
)

func frameAt(writer, reader string, cpu float64) Frame {
	lag := int64(0)
	return Frame{
		At: time.Date(2026, 12, 4, 14, 0, 0, 0, time.UTC),
		Status: api.Status{Name: "demo", Stage: "prod", Phase: api.PhaseReady,
			Instances: []api.Instance{
				{Name: writer, Role: api.RoleWriter, State: api.StateRunning, Port: portNum(writer)},
				{Name: reader, Role: api.RoleReader, State: api.StateRunning, Port: portNum(reader), LagBytes: &lag, SyncState: "sync", Promotable: true},
			},
			Endpoints: []api.Endpoint{
				{Name: "writer", Address: "127.0.0.1:5432", Backends: []string{"127.0.0.1:" + port(writer)}, Connections: 3},
				{Name: "reader", Address: "127.0.0.1:5433", Backends: []string{"127.0.0.1:" + port(reader)}},
			}},
		Metrics: api.MetricsReport{
			Samples: []api.Sample{{Time: time.Date(2026, 12, 4, 14, 0, int(cpu), 0, time.UTC), Instance: writer, Values: map[string]float64{"CPUUtilization": cpu, "DatabaseConnections": 4}}},
			Alarms:  []api.AlarmState{{Name: "CPUAlarmWriter", State: "OK"}, {Name: "ReplicaLagAlarm", State: "ALARM", Reason: "lag 12 s"}},
		},
		Events: []api.Event{{Time: time.Date(2026, 12, 4, 13, 59, 0, 0, time.UTC), Category: "failover", SourceID: "demo", Message: "switchover to " + writer}},
	}
}

// portNum gives each instance its own port: demo-1 6001, demo-2 6002.
func portNum(name string) int { return 6000 + int(name[len(name)-1]-'0') }

func port(name string) string { return strconv.Itoa(portNum(name)) }

// TestRenderThroughASwitchover renders frames before and after a switchover: the roles, the
// endpoints' backends, the sparkline history, the alarm and the last event follow.
func TestRenderThroughASwitchover(t *testing.T) {
	h := NewHistory()
	before := frameAt("demo-1", "demo-2", 10)
	h.Add(before)
	after := frameAt("demo-2", "demo-1", 80)
	h.Add(after)
	for _, c := range []struct {
		name string
		f    Frame
		v    View
		want []string
		not  []string
	}{
		{"before", before, View{Selected: 1}, []string{"demo (prod) ready", "> demo-2", "writer    127.0.0.1:5432  demo-1 127.0.0.1:6001", "ReplicaLagAlarm ALARM", "switchover to demo-1"}, []string{"CPUAlarmWriter"}},
		{"after", after, View{Selected: 0, Prompt: "switch over to demo-1? [y/N]"}, []string{"> demo-2", "writer    127.0.0.1:5432  demo-2 127.0.0.1:6002", "█ 80", "switch over to demo-1? [y/N]"}, nil},
		{"supervisor down", Frame{At: before.At, Err: errors.New("connection refused")}, View{}, []string{"supervisor: connection refused", "ALARMS: all 0 OK"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := Render(c.f, h, c.v)
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("missing %q in:\n%s", w, out)
				}
			}
			for _, w := range c.not {
				if strings.Contains(out, w) {
					t.Errorf("unexpected %q in:\n%s", w, out)
				}
			}
		})
	}
	h.Add(after) // the same sample again: not a new point
	if got := h.cpu["demo-2"]; len(got) != 1 {
		t.Errorf("a sample seen twice counted twice: %v", got)
	}
	if l := Line(after); !strings.Contains(l, "demo-2=writer/running") || !strings.Contains(l, "writer->demo-2 127.0.0.1:6002") {
		t.Errorf("line: %s", l)
	}
}

func TestSparkline(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want string
	}{{nil, "-"}, {[]float64{0, 0}, "▁▁"}, {[]float64{1, 2, 4, 8}, "▁▂▄█"}} {
		if got := Sparkline(c.in); got != c.want {
			t.Errorf("Sparkline(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestTPSFromTwoReadings: TPS is the difference of the servers' transaction counts over the time
// between refreshes; a restart (the count going back) or a stopped instance gives no point.
func TestTPSFromTwoReadings(t *testing.T) {
	at := time.Date(2026, 12, 4, 14, 0, 0, 0, time.UTC)
	frame := func(sec int, xacts int64, sessions int, state string) Frame {
		return Frame{At: at.Add(time.Duration(sec) * time.Second), Status: api.Status{Instances: []api.Instance{
			{Name: "demo-1", Role: api.RoleWriter, State: state, Transactions: xacts, Sessions: sessions}}}}
	}
	h := NewHistory()
	for _, f := range []Frame{
		frame(0, 100, 2, api.StateRunning),
		frame(2, 600, 5, api.StateRunning), // 250 tps
		frame(3, 50, 1, api.StateRunning),  // restarted: no TPS point
		frame(4, 150, 1, api.StateRunning), // 100 tps
		frame(5, 0, 0, api.StateStopped),   // stopped: nothing
		frame(6, 10, 1, api.StateRunning),  // first reading after a stop: no TPS point
	} {
		h.Add(f)
	}
	if got, want := h.tps["demo-1"], []float64{250, 100}; !slices.Equal(got, want) {
		t.Errorf("tps = %v, want %v", got, want)
	}
	if got, want := h.conns["demo-1"], []float64{2, 5, 1, 1, 1}; !slices.Equal(got, want) {
		t.Errorf("connections = %v, want %v", got, want)
	}
	if out := Render(frame(6, 10, 1, api.StateRunning), h, View{}); !strings.Contains(out, "TPS") || !strings.Contains(out, "█▃ 100") {
		t.Errorf("frame without the TPS sparkline:\n%s", out)
	}
}
