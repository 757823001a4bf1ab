package bench

import (
	"fmt"
	"html"
	"slices"
	"strings"
	"time"
)

// Timeline is the writing client's acknowledged writes per 10 ms around one disruption: the
// outage shows as a gap after the signal.
type Timeline struct {
	Kind     string        `json:"kind"`     // SIGKILL or switchover
	Start    time.Duration `json:"start"`    // the first bin's offset from the signal (negative)
	Bin      time.Duration `json:"bin"`      // each bin's width
	Counts   []int         `json:"counts"`   // acknowledged writes per bin
	Recovery time.Duration `json:"recovery"` // the signal to the first acknowledged write after it
}

const (
	timelineBin    = 10 * time.Millisecond
	timelineBefore = 300 * time.Millisecond // shown before the signal
	timelineAfter  = 500 * time.Millisecond // shown after the recovery
)

// newTimeline counts acks into bins from timelineBefore the signal t0 to timelineAfter the
// recovery (at least a second in all).
func newTimeline(kind disruption, t0 time.Time, acks []time.Time, recovery time.Duration) Timeline {
	end := max(recovery+timelineAfter, time.Second-timelineBefore)
	t := Timeline{Kind: string(kind), Start: -timelineBefore, Bin: timelineBin, Recovery: recovery,
		Counts: make([]int, int((timelineBefore+end)/timelineBin))}
	for _, a := range acks {
		if i := int((a.Sub(t0) - t.Start) / t.Bin); a.Sub(t0) >= t.Start && i < len(t.Counts) {
			t.Counts[i]++
		}
	}
	return t
}

// addTimeline keeps the chart of the run with the median recovery (the typical one) of outs.
func (r *runner) addTimeline(outs []outcome) {
	if len(outs) == 0 {
		return
	}
	sorted := slices.Clone(outs)
	slices.SortFunc(sorted, func(a, b outcome) int { return int(a.recovery - b.recovery) })
	r.mu.Lock()
	r.timelines = append(r.timelines, sorted[len(sorted)/2].timeline)
	r.mu.Unlock()
}

// File is where the chart goes, relative to BENCHMARKS.md's directory.
func (t Timeline) File() string {
	return "docs/bench/timeline-" + strings.ToLower(t.Kind) + ".svg"
}

// Title names the chart.
func (t Timeline) Title() string {
	what := "a SIGKILL of the writer (failover)"
	if t.Kind == string(switchover) {
		what = "a planned switchover"
	}
	return fmt.Sprintf("Acknowledged writes per %d ms around %s", t.Bin.Milliseconds(), what)
}

// SVG draws the bins as bars on a time axis, the signal as a red line at 0 and the recovery as a
// dashed one.
func (t Timeline) SVG() string {
	const (
		left, right, top, plotW, plotH = 50, 20, 40, 700, 180
	)
	n := max(len(t.Counts), 1)
	peak := max(slices.Max(append([]int{1}, t.Counts...)), 1)
	span := t.Bin * time.Duration(n)
	x := func(d time.Duration) float64 { return left + float64(d-t.Start)/float64(span)*plotW }
	bw := float64(plotW) / float64(n)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		left+plotW+right, top+plotH+40, left+plotW+right, top+plotH+40)
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14">%s</text>`+"\n", left, html.EscapeString(t.Title()))
	for i, c := range t.Counts {
		h := float64(c) / float64(peak) * plotH
		fmt.Fprintf(&b, `<rect class="bin" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#4a7ebb"/>`+"\n", left+float64(i)*bw, top+plotH-h, max(bw-0.5, 0.5), h)
	}
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`+"\n", left, top+plotH, left+plotW, top+plotH)
	for d := time.Duration(0); d <= span+t.Start; d += 100 * time.Millisecond {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%d ms</text>`+"\n", x(d), top+plotH+16, d.Milliseconds())
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%d</text>`+"\n", left-6, top+8, peak)
	signal := "signal"
	if t.Kind == string(switchover) {
		signal = "switchover asked"
	}
	fmt.Fprintf(&b, `<line class="signal" x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#c33" stroke-width="2"/>`+"\n", x(0), top-6, x(0), top+plotH)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#c33">%s %s</text>`+"\n", x(0)+4, top+4, html.EscapeString(t.Kind), signal)
	fmt.Fprintf(&b, `<line class="recovered" x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#393" stroke-dasharray="4 3"/>`+"\n", x(t.Recovery), top+14, x(t.Recovery), top+plotH)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#393">writes back after %d ms</text>`+"\n", x(t.Recovery)+4, top+26, t.Recovery.Milliseconds())
	b.WriteString("</svg>\n")
	return b.String()
}

// Charts are the SVG files the bench draws, by path relative to BENCHMARKS.md's directory.
func (r *Report) Charts() map[string]string {
	out := map[string]string{}
	if svg := r.EndpointChart(); svg != "" {
		out[EndpointChartFile] = svg
	}
	for _, t := range r.Timelines {
		out[t.File()] = t.SVG()
	}
	return out
}
