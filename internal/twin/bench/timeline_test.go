package bench

import (
	"encoding/xml"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestTimeline: acks are counted into 10 ms bins from 300 ms before the signal to 500 ms after the
// recovery, the outage is a run of empty bins, and the chart is well-formed SVG with a bar per
// bin, the signal at 0 and the recovery marked; the report links it and lists it among its charts.
func TestTimeline(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 14, 0, 0, 0, time.UTC)
	var acks []time.Time
	// A write every 2 ms from 400 ms before the signal until it, then nothing for 120 ms, then
	// again every 2 ms until 1 s after it.
	for d := -400 * time.Millisecond; d < time.Second; d += 2 * time.Millisecond {
		if d < 0 || d >= 120*time.Millisecond {
			acks = append(acks, t0.Add(d))
		}
	}
	tl := newTimeline(sigkill, t0, acks, 120*time.Millisecond)
	if got, want := len(tl.Counts), 100; got != want { // 300 ms before, then max(620 ms, 700 ms) after
		t.Fatalf("%d bins, want %d", got, want)
	}
	for i, c := range tl.Counts {
		at := tl.Start + time.Duration(i)*tl.Bin
		want := 5
		if at >= 0 && at < 120*time.Millisecond {
			want = 0
		}
		if c != want {
			t.Errorf("bin at %s: %d writes, want %d", at, c, want)
		}
	}

	var doc struct {
		XMLName xml.Name `xml:"svg"`
		Rects   []struct {
			Class  string  `xml:"class,attr"`
			Height float64 `xml:"height,attr"`
		} `xml:"rect"`
		Lines []struct {
			Class string `xml:"class,attr"`
			X1    string `xml:"x1,attr"`
		} `xml:"line"`
		Texts []string `xml:"text"`
	}
	svg := tl.SVG()
	if err := xml.Unmarshal([]byte(svg), &doc); err != nil {
		t.Fatalf("not well-formed SVG: %v\n%s", err, svg)
	}
	if len(doc.Rects) != len(tl.Counts) {
		t.Errorf("%d bars, want one per bin (%d)", len(doc.Rects), len(tl.Counts))
	}
	if doc.Rects[35].Height != 0 || doc.Rects[0].Height == 0 {
		t.Errorf("bar heights: before the signal %v, in the outage %v", doc.Rects[0].Height, doc.Rects[35].Height)
	}
	marks := map[string]float64{}
	for _, l := range doc.Lines {
		x, _ := strconv.ParseFloat(l.X1, 64)
		marks[l.Class] = x
	}
	// 50 px margin, 700 px for 1 s: the signal 300 ms into the plot, the recovery 120 ms later.
	if marks["signal"] != 260 || marks["recovered"] != 344 {
		t.Errorf("signal at x=%v, recovery at x=%v; want 260 and 344", marks["signal"], marks["recovered"])
	}
	joined := strings.Join(doc.Texts, "|")
	for _, want := range []string{"SIGKILL signal", "writes back after 120 ms", "0 ms", "300 ms"} {
		if !strings.Contains(joined, want) {
			t.Errorf("texts %q lack %q", joined, want)
		}
	}

	r := &Report{Timelines: []Timeline{tl, newTimeline(switchover, t0, acks, 120*time.Millisecond)}}
	charts := r.Charts()
	for _, f := range []string{"docs/bench/timeline-sigkill.svg", "docs/bench/timeline-switchover.svg"} {
		if charts[f] == "" {
			t.Errorf("no chart %s among %d", f, len(charts))
		}
		if !strings.Contains(r.Markdown(), "]("+f+")") {
			t.Errorf("BENCHMARKS.md does not link %s", f)
		}
	}
}
