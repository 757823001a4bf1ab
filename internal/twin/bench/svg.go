package bench

import (
	"fmt"
	"html"
	"strings"
)

// EndpointChartFile is where the endpoint bars go, relative to BENCHMARKS.md's directory.
const EndpointChartFile = "docs/bench/endpoints.svg"

// bar is one measured ratio to direct.
type bar struct {
	label string
	pct   float64
}

// endpointBars reads the endpoint rows' "N % of direct" results.
func (r *Report) endpointBars() []bar {
	var out []bar
	for _, row := range r.Rows {
		if row.Scenario != ScenarioEndpoint {
			continue
		}
		var pct float64
		if _, err := fmt.Sscanf(row.Result, "%f %% of direct", &pct); err != nil {
			continue // failed or not available: nothing measured
		}
		out = append(out, bar{label: row.Measure, pct: pct})
	}
	return out
}

// EndpointChart draws each endpoint measurement as a bar in percent of a direct connection, with
// the 100 % (direct) and 95 % (target) lines; "" when the run measured no endpoint.
func (r *Report) EndpointChart() string {
	bars := r.endpointBars()
	if len(bars) == 0 {
		return ""
	}
	const (
		left, right, top, rowH, barH = 330, 40, 40, 28, 18
		plotW                        = 400
		maxPct                       = 120.0
	)
	width, height := left+plotW+right, top+rowH*len(bars)+30
	x := func(pct float64) float64 {
		pct = min(max(pct, 0), maxPct)
		return left + pct/maxPct*plotW
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14">Endpoint throughput, %% of a direct connection (pgbench, TLS)</text>`+"\n", left-300)
	for i, br := range bars {
		y := top + i*rowH
		fill := "#4a7ebb"
		if strings.Contains(br.label, "proxy path") {
			fill = "#bbbbbb"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-8, y+barH-4, html.EscapeString(br.label))
		fmt.Fprintf(&b, `<rect class="bar" x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", left, y, x(br.pct)-left, barH, fill)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%.1f %%</text>`+"\n", x(br.pct)+4, y+barH-4, br.pct)
	}
	bottom := top + rowH*len(bars)
	for _, l := range []struct {
		pct  float64
		name string
	}{{100, "direct"}, {95, "target 95 %"}} {
		fmt.Fprintf(&b, `<line class="ref" x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#c33" stroke-dasharray="4 3"/>`+"\n", x(l.pct), top-6, x(l.pct), bottom)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#c33">%s</text>`+"\n", x(l.pct), bottom+16, l.name)
	}
	b.WriteString("</svg>\n")
	return b.String()
}
