package alarm

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apgstack/apgstack/bestpractice"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// feed gives one CPU sample per minute for the writer and evaluates after each minute.
func feed(e *Evaluator, start time.Time, values []float64) ([]Transition, time.Time) {
	var out []Transition
	now := start
	for _, v := range values {
		e.Observe(Sample{Time: now.Add(30 * time.Second), Metric: "CPUUtilization", Role: "WRITER", Value: v})
		now = now.Add(time.Minute)
		out = append(out, e.Evaluate(now)...)
	}
	return out, now
}

func TestCPUAlarmTransitions(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []float64
		want   []string // From->To
	}{
		{"below threshold", []float64{10, 20, 79.9, 50, 10, 10}, nil},
		{"five breaching periods alarm", []float64{80, 90, 95, 85, 99}, []string{"OK->ALARM"}},
		{"four are not enough", []float64{80, 90, 95, 85, 10, 99, 99, 99, 99}, nil},
		{"one good period is OK again", []float64{80, 90, 95, 85, 99, 10}, []string{"OK->ALARM", "ALARM->OK"}},
		// missing data (NaN is dropped: no sample that period) does not breach
		{"missing data not breaching", []float64{90, 90, nan(), 90, 90, 90}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := t0
			e, err := New("apgstack-database", bestpractice.Alarms, start)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := feed(e, start, tc.values)
			var names []string
			for _, tr := range got {
				if tr.Name != "CPUAlarmWriter" || tr.Role != "WRITER" {
					t.Fatalf("transition of %s/%s", tr.Name, tr.Role)
				}
				names = append(names, tr.From+"->"+tr.To)
			}
			if strings.Join(names, " ") != strings.Join(tc.want, " ") {
				t.Fatalf("transitions %v, want %v", names, tc.want)
			}
		})
	}
}

func nan() float64 { var z float64; return z / z }

func TestMaximumAndAverage(t *testing.T) {
	start := t0
	e, err := New("c", bestpractice.Alarms, start, WithThreshold("FreeLocalStorage", 100))
	if err != nil {
		t.Fatal(err)
	}
	now := start
	var got []Transition
	for range 5 {
		// CPU: Maximum of 10 and 85 breaches. Storage: Average of 50 and 250 = 150 > 100, no breach.
		for _, s := range []Sample{{Metric: "CPUUtilization", Value: 10}, {Metric: "CPUUtilization", Value: 85},
			{Metric: "FreeLocalStorage", Value: 50}, {Metric: "FreeLocalStorage", Value: 250}} {
			s.Time, s.Role = now.Add(time.Second), "READER"
			e.Observe(s)
		}
		now = now.Add(time.Minute)
		got = append(got, e.Evaluate(now)...)
	}
	if len(got) != 1 || got[0].Name != "CPUAlarmReader" || got[0].To != Alarm {
		t.Fatalf("transitions %+v", got)
	}
	ev := got[0].Event()
	if ev.SourceType != bestpractice.SourceCluster || ev.SourceID != "c" || ev.Category != "notification" ||
		!strings.Contains(ev.Message, "CPUAlarmReader") || !strings.Contains(ev.Message, "OK -> ALARM") {
		t.Fatalf("event %+v", ev)
	}
	for _, st := range e.States() {
		switch st.Name {
		case "CPUAlarmReader":
			if st.State != Alarm || len(st.Recent) != 5 || *st.Recent[4] != 85 {
				t.Fatalf("state %+v", st)
			}
		case "FreeLocalStorageAlarmReader":
			if st.State != OK || st.Threshold != 100 || *st.Recent[4] != 150 {
				t.Fatalf("state %+v", st)
			}
		default:
			// Only the reader was sampled: the writer's alarms have had no data.
			if want := map[string]string{"READER": OK, "WRITER": InsufficientData}[st.Role]; st.State != want {
				t.Fatalf("state %+v, want %s", st, want)
			}
		}
	}
	if n := len(e.States()); n != len(bestpractice.Alarms)*len(bestpractice.Roles) {
		t.Fatalf("%d alarms, want one per definition and role", n)
	}
}

func TestSamplesOfEvaluatedPeriodsAreIgnored(t *testing.T) {
	e, err := New("c", bestpractice.Alarms, t0)
	if err != nil {
		t.Fatal(err)
	}
	e.Evaluate(t0.Add(3 * time.Minute))
	e.Observe(Sample{Time: t0.Add(90 * time.Second), Metric: "CPUUtilization", Role: "WRITER", Value: 100})
	for _, st := range e.States() {
		for _, v := range st.Recent {
			if v != nil {
				t.Fatalf("%s: late sample counted: %v", st.Name, *v)
			}
		}
	}
}

func TestUnknownOverrideRefused(t *testing.T) {
	_, err := New("c", bestpractice.Alarms, t0, WithThreshold("Disk", 1))
	if err == nil || !strings.Contains(err.Error(), `"Disk"`) || !strings.Contains(err.Error(), "CPU") {
		t.Fatalf("got %v", err)
	}
}

// TestRoleWithoutInstance: the alarms of a role no instance holds (the reader of a dev or test
// cluster) are INSUFFICIENT_DATA, never OK, and say why; the first sample of a role makes its
// alarms OK without a transition, and from then on they judge as any other.
func TestRoleWithoutInstance(t *testing.T) {
	type step struct {
		role string  // "" = no sample this period
		cpu  float64 // the CPU sample
	}
	writer := func(n int, cpu float64) []step { return slices.Repeat([]step{{"WRITER", cpu}}, n) }
	reader := func(n int, cpu float64) []step { return slices.Repeat([]step{{"READER", cpu}}, n) }
	tests := []struct {
		name        string
		steps       []step
		want        map[string]string // role -> state of its CPU alarm
		transitions []string
	}{
		{"nothing sampled yet", []step{{}, {}}, map[string]string{"WRITER": InsufficientData, "READER": InsufficientData}, nil},
		{"dev: a writer only", writer(6, 10), map[string]string{"WRITER": OK, "READER": InsufficientData}, nil},
		{"dev: a busy writer alarms, the absent reader does not", writer(6, 99), map[string]string{"WRITER": Alarm, "READER": InsufficientData},
			[]string{"CPUAlarmWriter OK->ALARM"}},
		{"a reader that appears later starts OK, quietly", append(writer(3, 10), reader(2, 10)...),
			map[string]string{"WRITER": OK, "READER": OK}, nil},
		{"and then alarms like any other", append(writer(1, 10), reader(5, 99)...),
			map[string]string{"WRITER": OK, "READER": Alarm}, []string{"CPUAlarmReader OK->ALARM"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := New("c", bestpractice.Alarms, t0)
			if err != nil {
				t.Fatal(err)
			}
			now := t0
			var got []string
			for _, s := range tt.steps {
				if s.role != "" {
					e.Observe(Sample{Time: now.Add(time.Second), Metric: "CPUUtilization", Role: s.role, Value: s.cpu})
				}
				now = now.Add(time.Minute)
				for _, tr := range e.Evaluate(now) {
					got = append(got, tr.Name+" "+tr.From+"->"+tr.To)
				}
			}
			if !slices.Equal(got, tt.transitions) {
				t.Errorf("transitions %v, want %v", got, tt.transitions)
			}
			for _, st := range e.States() {
				if st.Metric != "CPUUtilization" {
					continue
				}
				if st.State != tt.want[st.Role] {
					t.Errorf("%s: %s, want %s", st.Name, st.State, tt.want[st.Role])
				}
				if st.State == InsufficientData && !strings.Contains(st.Reason, "no instance has held the "+st.Role+" role") {
					t.Errorf("%s: reason %q does not say why", st.Name, st.Reason)
				}
			}
		})
	}
}
