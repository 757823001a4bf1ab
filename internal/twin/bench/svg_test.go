package bench

import (
	"encoding/xml"
	"strings"
	"testing"
)

// TestEndpointChart: one bar per measured endpoint row (failed rows left out), widths in
// proportion to the ratio, direct and target lines, well-formed XML with labels escaped.
func TestEndpointChart(t *testing.T) {
	r := &Report{Rows: []Row{
		{Scenario: ScenarioEndpoint, Measure: "writer endpoint (kernel path), select-only", Result: "98.0 % of direct"},
		{Scenario: ScenarioEndpoint, Measure: "writer endpoint (proxy path, the fallback), <tpcb>", Result: "49.0 % of direct"},
		{Scenario: ScenarioEndpoint, Measure: "reader endpoint", Result: "", Verdict: Failed},
		{Scenario: "ready", Measure: "dev up", Result: "1.4 s"},
	}}
	svg := r.EndpointChart()
	type rect struct {
		Class string  `xml:"class,attr"`
		Width float64 `xml:"width,attr"`
	}
	type line struct {
		Class string `xml:"class,attr"`
	}
	var doc struct {
		XMLName xml.Name `xml:"svg"`
		Rects   []rect   `xml:"rect"`
		Lines   []line   `xml:"line"`
		Texts   []string `xml:"text"`
	}
	if err := xml.Unmarshal([]byte(svg), &doc); err != nil {
		t.Fatalf("not well-formed SVG: %v\n%s", err, svg)
	}
	if len(doc.Rects) != 2 {
		t.Fatalf("%d bars, want 2 (the failed row and other scenarios left out)", len(doc.Rects))
	}
	if got := doc.Rects[0].Width / doc.Rects[1].Width; got < 1.99 || got > 2.01 {
		t.Errorf("bar widths %v, %v: ratio %.2f, want 2 (98 %% vs 49 %%)", doc.Rects[0].Width, doc.Rects[1].Width, got)
	}
	if len(doc.Lines) != 2 {
		t.Errorf("%d reference lines, want direct and target", len(doc.Lines))
	}
	joined := strings.Join(doc.Texts, "|")
	for _, want := range []string{"writer endpoint (proxy path, the fallback), <tpcb>", "98.0 %", "direct", "target 95 %"} {
		if !strings.Contains(joined, want) {
			t.Errorf("texts %q lack %q", joined, want)
		}
	}
	if (&Report{}).EndpointChart() != "" {
		t.Error("a report with no endpoint rows draws a chart")
	}
}
