// Package alarm evaluates the best-practice alarms (bestpractice.Alarms) over the local twin's
// metric samples the way CloudWatch does: per period the statistic (Maximum or Average) of the
// samples, compared with the threshold; ALARM once EvaluationPeriods consecutive periods breach,
// back to OK as soon as one of them does not; a period without data does not breach
// (TreatMissingData notBreaching). Each alarm watches one cluster role (WRITER, READER), so it
// follows a failover as the role-dimension alarms of the database stack do.
//
// An alarm starts INSUFFICIENT_DATA, as a new CloudWatch alarm does, and stays so until an
// instance holding its role is sampled: a cluster without a reader (dev, test) never shows its
// READER alarms as OK — on AWS those alarms do not even exist there. The first sample of a role
// makes its alarms OK without a transition, so that starting the twin notifies nobody.
package alarm

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/internal/twin/observe/events"
)

// States of an alarm.
const (
	OK               = "OK"
	Alarm            = "ALARM"
	InsufficientData = "INSUFFICIENT_DATA"
)

// Sample is one measurement of a metric on the instance holding a role.
type Sample struct {
	Time   time.Time
	Metric string // bestpractice.Alarm.MetricName: CPUUtilization, ...
	Role   string // WRITER or READER
	Value  float64
}

// State is what `apgstack metrics` and the API show of an alarm.
type State struct {
	Name        string    `json:"name"` // CPUAlarmWriter, as the stack's logical id
	Metric      string    `json:"metric"`
	Role        string    `json:"role"`
	Statistic   string    `json:"statistic"`
	Comparison  string    `json:"comparison"`
	Threshold   float64   `json:"threshold"`
	Period      string    `json:"period"`
	Evaluations int       `json:"evaluationPeriods"`
	State       string    `json:"state"`
	Since       time.Time `json:"since"`
	// Recent are the last evaluated periods' statistics, oldest first (nil: no data).
	Recent []*float64 `json:"recent"`
	Reason string     `json:"reason,omitempty"`
}

// Transition is an alarm changing state.
type Transition struct {
	Cluster  string
	Name     string
	Role     string
	From, To string
	Time     time.Time
	Reason   string
}

// Event is the transition as an event of the cluster (category notification, as CloudWatch
// alarm actions reach the same notification topic as the event subscriptions).
func (t Transition) Event() events.Event {
	return events.Event{Time: t.Time, SourceType: bestpractice.SourceCluster, SourceID: t.Cluster, Category: "notification",
		Message: fmt.Sprintf("alarm %s (%s role): %s -> %s: %s", t.Name, t.Role, t.From, t.To, t.Reason)}
}

// Option changes an evaluator.
type Option func(*Evaluator)

// WithThreshold overrides the threshold of the alarm named name (bestpractice.Alarm.Name: CPU,
// MaxUsedTxIDs, FreeLocalStorage) — for tests, and a future configuration field.
func WithThreshold(name string, v float64) Option {
	return func(e *Evaluator) { e.thresholds[name] = v }
}

// WithPeriod overrides every alarm's period (tests evaluate in milliseconds rather than minutes).
func WithPeriod(d time.Duration) Option { return func(e *Evaluator) { e.period = d } }

// Evaluator holds the alarms of one cluster.
type Evaluator struct {
	cluster    string
	thresholds map[string]float64
	period     time.Duration

	mu     sync.Mutex
	alarms []*watch
	seen   map[string]bool // roles an instance has been sampled in
}

// watch is one alarm on one role.
type watch struct {
	def    bestpractice.Alarm
	role   string
	period time.Duration
	// samples of periods not yet evaluated, by period start (unix nanoseconds).
	buckets map[int64][]float64
	// next is the start of the next period to evaluate.
	next   time.Time
	recent []*float64
	state  string
	since  time.Time
	reason string
}

func (w *watch) name() string {
	return w.def.Name + "Alarm" + w.role[:1] + strings.ToLower(w.role[1:])
}

// New builds the evaluator for cluster from the alarm definitions; every alarm starts
// INSUFFICIENT_DATA at now.
// Unknown names in WithThreshold are refused.
func New(cluster string, defs []bestpractice.Alarm, now time.Time, opts ...Option) (*Evaluator, error) {
	e := &Evaluator{cluster: cluster, thresholds: map[string]float64{}, seen: map[string]bool{}}
	for _, o := range opts {
		o(e)
	}
	known := map[string]bool{}
	for _, d := range defs {
		known[d.Name] = true
	}
	for name := range e.thresholds {
		if !known[name] {
			var names []string
			for n := range known {
				names = append(names, n)
			}
			sort.Strings(names)
			return nil, fmt.Errorf("alarm threshold override %q: no such alarm (known: %s)", name, strings.Join(names, ", "))
		}
	}
	for _, d := range defs {
		if v, ok := e.thresholds[d.Name]; ok {
			d.Threshold = v
		}
		if d.EvaluationPeriods < 1 || d.PeriodSeconds < 1 {
			return nil, fmt.Errorf("alarm %s: period %d s and %d evaluation periods: both must be at least 1", d.Name, d.PeriodSeconds, d.EvaluationPeriods)
		}
		if d.Statistic != "Maximum" && d.Statistic != "Average" && d.Statistic != "Minimum" {
			return nil, fmt.Errorf("alarm %s: statistic %q: Maximum, Average or Minimum allowed", d.Name, d.Statistic)
		}
		d.Breaches(0) // panics on an unknown comparison: a programming error in the definitions
		period := time.Duration(d.PeriodSeconds) * time.Second
		if e.period > 0 {
			period = e.period
		}
		// The first period is the first whole one from now.
		first := now.Truncate(period)
		if first.Before(now) {
			first = first.Add(period)
		}
		for _, role := range bestpractice.Roles {
			e.alarms = append(e.alarms, &watch{def: d, role: role, period: period, buckets: map[int64][]float64{},
				next: first, state: InsufficientData, since: now, reason: noData(role)})
		}
	}
	return e, nil
}

// Observe records a sample; samples of a metric no alarm watches are ignored, as are samples of a
// period already evaluated.
func (e *Evaluator) Observe(s Sample) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !math.IsNaN(s.Value) && !e.seen[s.Role] {
		e.seen[s.Role] = true
		for _, w := range e.alarms {
			if w.role == s.Role && w.state == InsufficientData {
				w.state, w.since, w.reason = OK, s.Time, ""
			}
		}
	}
	for _, w := range e.alarms {
		if w.def.MetricName != s.Metric || w.role != s.Role || s.Time.Before(w.next) || math.IsNaN(s.Value) {
			continue
		}
		start := s.Time.Truncate(w.period).UnixNano()
		w.buckets[start] = append(w.buckets[start], s.Value)
	}
}

// Evaluate closes every period that ended by now and returns the transitions, in order.
func (e *Evaluator) Evaluate(now time.Time) []Transition {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Transition
	for _, w := range e.alarms {
		for !w.next.Add(w.period).After(now) {
			start := w.next
			w.next = start.Add(w.period)
			values := w.buckets[start.UnixNano()]
			delete(w.buckets, start.UnixNano())
			var stat *float64
			if len(values) > 0 {
				v := statistic(w.def.Statistic, values)
				stat = &v
			}
			w.recent = append(w.recent, stat)
			if len(w.recent) > w.def.EvaluationPeriods {
				w.recent = w.recent[len(w.recent)-w.def.EvaluationPeriods:]
			}
			if w.state == InsufficientData {
				continue // no instance has held the role: nothing to judge
			}
			to, reason := w.judge()
			w.reason = reason
			if to != w.state {
				end := w.next
				out = append(out, Transition{Cluster: e.cluster, Name: w.name(), Role: w.role, From: w.state, To: to, Time: end, Reason: reason})
				w.state, w.since = to, end
			}
		}
	}
	return out
}

func noData(role string) string {
	return fmt.Sprintf("no data: no instance has held the %s role", role)
}

// judge decides the state from the recent periods: all EvaluationPeriods breaching is ALARM.
func (w *watch) judge() (string, string) {
	breaching := 0
	for _, v := range w.recent {
		if v != nil && w.def.Breaches(*v) { // missing data: notBreaching
			breaching++
		}
	}
	last := "no data"
	if n := len(w.recent); n > 0 && w.recent[n-1] != nil {
		last = fmt.Sprintf("%s %s", w.def.Statistic, formatValue(*w.recent[n-1], w.def.Unit))
	}
	desc := fmt.Sprintf("%s %s %s over %d of the last %d periods of %s (last: %s)", w.def.MetricName, comparisonSymbol(w.def.Comparison),
		formatValue(w.def.Threshold, w.def.Unit), breaching, w.def.EvaluationPeriods, w.period, last)
	if breaching >= w.def.EvaluationPeriods {
		return Alarm, desc
	}
	return OK, desc
}

func statistic(name string, values []float64) float64 {
	switch name {
	case "Maximum":
		m := values[0]
		for _, v := range values[1:] {
			m = math.Max(m, v)
		}
		return m
	case "Minimum":
		m := values[0]
		for _, v := range values[1:] {
			m = math.Min(m, v)
		}
		return m
	default: // Average
		sum := 0.0
		for _, v := range values {
			sum += v
		}
		return sum / float64(len(values))
	}
}

func comparisonSymbol(c string) string {
	return map[string]string{"GreaterThanOrEqualToThreshold": ">=", "GreaterThanThreshold": ">",
		"LessThanOrEqualToThreshold": "<=", "LessThanThreshold": "<"}[c]
}

func formatValue(v float64, unit string) string {
	switch unit {
	case "Percent":
		return fmt.Sprintf("%.1f %%", v)
	case "Bytes":
		return fmt.Sprintf("%.0f bytes", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// States returns every alarm's state, by name.
func (e *Evaluator) States() []State {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]State, 0, len(e.alarms))
	for _, w := range e.alarms {
		recent := make([]*float64, len(w.recent))
		copy(recent, w.recent)
		out = append(out, State{Name: w.name(), Metric: w.def.MetricName, Role: w.role, Statistic: w.def.Statistic,
			Comparison: w.def.Comparison, Threshold: w.def.Threshold, Period: w.period.String(), Evaluations: w.def.EvaluationPeriods,
			State: w.state, Since: w.since, Recent: recent, Reason: w.reason})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
