package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// synth times writing the three templates and their parameter files, in-process.
func (r *runner) synth(ctx context.Context) error {
	if r.o.Synth == nil {
		return fmt.Errorf("synth: %w in this build", errNotAvailable)
	}
	dir := filepath.Join(r.work, "synth")
	r.defer_(func() { _ = os.RemoveAll(dir) })
	defer os.RemoveAll(dir)
	// One untimed run first: the first build pays for lazily parsed data (schemas, embedded files).
	if err := r.o.Synth(r.cfg, dir); err != nil {
		return err
	}
	var times []float64
	for i := 0; i < r.s.synthIterations; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		start := time.Now()
		if err := r.o.Synth(r.cfg, dir); err != nil {
			return err
		}
		times = append(times, time.Since(start).Seconds())
	}
	s := Summarize(times)
	r.progress("synth: median %s over %d iterations", FormatSeconds(s.Median), s.N)
	r.add(Row{Scenario: "synth", Measure: "write the three templates and parameter files", Result: FormatSeconds(s.Median), Spread: SpreadSeconds(s),
		Target: "< 100 ms", Verdict: verdict(s.Median < 0.1), Note: fmt.Sprintf("median of %d iterations after a warm-up", s.N)})
	return nil
}
