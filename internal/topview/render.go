// Package topview is the model and view of `apgstack top`: a live view of the local twin (its
// instances with role, state, lag and sparklines of TPS, connections and CPU, its endpoints, alarms and
// last events). Render is pure, so the view is tested without a terminal; Model drives it with
// bubbletea.
package topview

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/apgstack/apgstack/internal/twin/api"
)

// Frame is what one refresh read from the supervisor.
type Frame struct {
	At      time.Time
	Status  api.Status
	Metrics api.MetricsReport
	Events  []api.Event
	Err     error // the supervisor did not answer: the frame shows it, the last good data stays
}

// historyLen is how many refreshes a sparkline shows.
const historyLen = 30

// History keeps the last values of the sparklines per instance: TPS and connections from each
// refresh's status (the servers' own counters), CPU from the supervisor's metric samples.
type History struct {
	tps, conns, cpu map[string][]float64
	seen            map[string]time.Time // the last sample taken per instance: a sample counts once
	last            map[string]reading   // the previous refresh's transaction count per instance
}

type reading struct {
	at           time.Time
	transactions int64
}

// NewHistory returns an empty history.
func NewHistory() *History {
	return &History{tps: map[string][]float64{}, conns: map[string][]float64{}, cpu: map[string][]float64{},
		seen: map[string]time.Time{}, last: map[string]reading{}}
}

// Add appends a frame's values: a TPS point is the difference of two readings of the server's
// transaction count (none after a restart reset it), a connections point the server's sessions.
func (h *History) Add(f Frame) {
	for _, in := range f.Status.Instances {
		if in.State != api.StateRunning {
			delete(h.last, in.Name)
			continue
		}
		if prev, ok := h.last[in.Name]; ok && f.At.After(prev.at) && in.Transactions >= prev.transactions {
			h.tps[in.Name] = push(h.tps[in.Name], float64(in.Transactions-prev.transactions)/f.At.Sub(prev.at).Seconds())
		}
		h.last[in.Name] = reading{at: f.At, transactions: in.Transactions}
		h.conns[in.Name] = push(h.conns[in.Name], float64(in.Sessions))
	}
	for _, s := range f.Metrics.Samples {
		if !s.Time.After(h.seen[s.Instance]) {
			continue
		}
		h.seen[s.Instance] = s.Time
		if v, ok := s.Values["CPUUtilization"]; ok {
			h.cpu[s.Instance] = push(h.cpu[s.Instance], v)
		}
	}
}

func push(s []float64, v float64) []float64 {
	s = append(s, v)
	if len(s) > historyLen {
		s = s[len(s)-historyLen:]
	}
	return s
}

var bars = []rune("▁▂▃▄▅▆▇█")

// Sparkline draws values scaled to their own maximum (an empty history is a dash).
func Sparkline(vs []float64) string {
	if len(vs) == 0 {
		return "-"
	}
	top := slices.Max(vs)
	var b strings.Builder
	for _, v := range vs {
		i := 0
		if top > 0 {
			i = int(v / top * float64(len(bars)-1))
		}
		b.WriteRune(bars[max(0, min(i, len(bars)-1))])
	}
	return b.String()
}

// View is what Render needs besides the data: the selected instance and the prompt line.
type View struct {
	Selected int    // index into Status.Instances
	Prompt   string // a confirmation question or the outcome of the last action
	Events   int    // how many of the last events to show (0: 8)
}

// Render draws a frame as plain text: a header, the instances, the endpoints, the alarms and the
// last events. The selected instance is marked with '>'.
func Render(f Frame, h *History, v View) string {
	var b strings.Builder
	st := f.Status
	fmt.Fprintf(&b, "apgstack top — %s (%s) %s, %s", dash(st.Name), dash(st.Stage), dash(st.Phase), f.At.Format("15:04:05"))
	if st.Degraded {
		b.WriteString(", replication DEGRADED")
	}
	b.WriteString("\n")
	if f.Err != nil {
		fmt.Fprintf(&b, "supervisor: %v\n", f.Err)
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  INSTANCE\tROLE\tSTATE\tPORT\tLAG\tSYNC\tTPS\tCONNECTIONS\tCPU %\t")
	for i, in := range st.Instances {
		mark := " "
		if i == v.Selected {
			mark = ">"
		}
		lag := "-"
		if in.LagBytes != nil {
			lag = fmt.Sprintf("%d B", *in.LagBytes)
			if in.LagSeconds != nil {
				lag += fmt.Sprintf(" %.1fs", *in.LagSeconds)
			}
		}
		fmt.Fprintf(tw, "%s %s\t%s\t%s\t%d\t%s\t%s\t%s %s\t%s %s\t%s %s\t\n", mark, in.Name, in.Role, in.State, in.Port, lag, dash(in.SyncState),
			Sparkline(h.tps[in.Name]), last(h.tps[in.Name], "%.0f"), Sparkline(h.conns[in.Name]), last(h.conns[in.Name], "%.0f"),
			Sparkline(h.cpu[in.Name]), last(h.cpu[in.Name], "%.0f"))
	}
	tw.Flush()

	b.WriteString("\n")
	tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tADDRESS\tPOINTS TO\tCONNECTIONS")
	for _, e := range st.Endpoints {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", e.Name, e.Address, dash(strings.Join(backends(st, e), ", ")), e.Connections)
	}
	tw.Flush()

	b.WriteString("\n")
	alarms := 0
	for _, a := range f.Metrics.Alarms {
		if a.State != "OK" {
			if alarms == 0 {
				b.WriteString("ALARMS\n")
			}
			alarms++
			fmt.Fprintf(&b, "  %s %s since %s: %s\n", a.Name, a.State, a.Since.Format("15:04:05"), a.Reason)
		}
	}
	if alarms == 0 {
		fmt.Fprintf(&b, "ALARMS: all %d OK\n", len(f.Metrics.Alarms))
	}

	b.WriteString("\nLAST EVENTS\n")
	n := v.Events
	if n <= 0 {
		n = 8
	}
	evs := f.Events
	if len(evs) > n {
		evs = evs[len(evs)-n:]
	}
	for _, e := range evs {
		fmt.Fprintf(&b, "  %s %s %s: %s\n", e.Time.Format("15:04:05"), e.Category, e.SourceID, e.Message)
	}
	if v.Prompt != "" {
		b.WriteString("\n" + v.Prompt + "\n")
	}
	return b.String()
}

// Line is the one-line summary printed per refresh when stdout is not a terminal.
func Line(f Frame) string {
	st := f.Status
	parts := []string{f.At.Format(time.RFC3339), st.Phase}
	for _, in := range st.Instances {
		p := fmt.Sprintf("%s=%s/%s", in.Name, in.Role, in.State)
		if in.LagBytes != nil {
			p += fmt.Sprintf(" lag=%dB", *in.LagBytes)
		}
		parts = append(parts, p)
	}
	for _, e := range st.Endpoints {
		parts = append(parts, fmt.Sprintf("%s->%s", e.Name, strings.Join(backends(st, e), ",")))
	}
	if f.Err != nil {
		parts = append(parts, "error: "+f.Err.Error())
	}
	return strings.Join(parts, " ")
}

// backends names the instances behind an endpoint ("instance1 127.0.0.1:6001"); a backend
// address no instance listens on is shown as is.
func backends(st api.Status, e api.Endpoint) []string {
	var out []string
	for _, b := range e.Backends {
		name := b
		for _, in := range st.Instances {
			if strings.HasSuffix(b, fmt.Sprintf(":%d", in.Port)) || b == in.Name {
				name = in.Name + " " + b
				break
			}
		}
		out = append(out, name)
	}
	return out
}

func last(vs []float64, format string) string {
	if len(vs) == 0 {
		return ""
	}
	return fmt.Sprintf(format, vs[len(vs)-1])
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
