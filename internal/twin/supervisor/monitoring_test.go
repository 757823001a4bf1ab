package supervisor

import (
	"slices"
	"testing"
	"time"

	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/observe/metrics"
)

// TestProdSamplesBothRoles runs a prod twin (writer and synchronous reader) and finds the
// reader's replica lag and the writer's metrics in the report, on their roles, and the
// Prometheus endpoint in the status.
func TestProdSamplesBothRoles(t *testing.T) {
	cfg := testConfig(t, "prod")
	tw := upWith(t, cfg, stateDir(t), MonitoringOptions{SampleInterval: 200 * time.Millisecond})
	if tw.status.MetricsEndpoint == "" {
		t.Fatal("status lacks the Prometheus endpoint")
	}
	var rep api.MetricsReport
	waitFor(t, "samples of both instances", func() bool {
		var err error
		if rep, err = tw.client().Metrics(apiCtx(t)); err != nil {
			t.Fatal(err)
		}
		return len(rep.Samples) == 2
	})
	if rep.Interval != (200 * time.Millisecond).String() {
		t.Fatalf("interval %s", rep.Interval)
	}
	i := slices.IndexFunc(rep.Samples, func(s metrics.Sample) bool { return s.Role == "READER" })
	if i < 0 {
		t.Fatalf("no READER sample: %+v", rep.Samples)
	}
	r := rep.Samples[i]
	if lag, ok := r.Values[metrics.ReplicaLag]; !ok || lag < 0 || len(r.Errors) > 0 {
		t.Fatalf("reader sample %+v", r)
	}
	w := rep.Samples[1-i]
	if _, ok := w.Values[metrics.ReplicaLag]; ok || w.Role != "WRITER" || w.Values[metrics.FreeLocalStorage] <= 0 {
		t.Fatalf("writer sample %+v", w)
	}
}
