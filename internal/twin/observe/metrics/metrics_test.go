package metrics

import (
	"bytes"
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apgstack/apgstack/internal/testkit/golden"
	"github.com/apgstack/apgstack/internal/testkit/pgtest"
	"github.com/jackc/pgx/v5"
)

func TestWriteTextGolden(t *testing.T) {
	var b bytes.Buffer
	err := WriteText(&b, []Family{
		{Name: "apgstack_cpu_utilization_percent", Help: "CPU\\time\nhere", Rows: []Row{
			{Labels: map[string]string{"role": "WRITER", "instance": "instance1", "cluster": `a"b\c` + "\n"}, Value: 12.5},
			{Labels: map[string]string{"role": "READER", "instance": "instance2", "cluster": "c"}, Value: math.NaN()},
		}},
		{Name: "apgstack_empty", Help: "left out"},
		{Name: "apgstack_alarm_state", Help: "1 in ALARM", Rows: []Row{{Value: 1}, {Value: math.Inf(1)}, {Value: 6e8}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "metrics.txt", b.Bytes())
}

// TestSamplerAgainstRealServer samples a real server and checks each value is sane.
func TestSamplerAgainstRealServer(t *testing.T) {
	srv := pgtest.Start(t, pgtest.WithPreload())
	ctx := context.Background()
	target := Target{Instance: "instance1", Role: "WRITER", DataDir: srv.DataDir,
		Connect: func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, srv.ConnString("postgres")) }}
	s := NewSampler(time.Second, func() []Target { return []Target{target} })
	t.Cleanup(s.Close)
	var seen []Sample
	s.OnSample = func(smp Sample) { seen = append(seen, smp) }

	first := s.SampleAll(ctx)[0]
	if len(first.Errors) > 0 {
		t.Fatalf("errors: %v", first.Errors)
	}
	if _, ok := first.Values[CPUUtilization]; ok {
		t.Fatal("CPU utilization on the first sample, with nothing to compare with")
	}

	// Two client connections, some transaction IDs and some CPU work between the samples.
	c1, c2 := srv.Conn(t, "postgres"), srv.Conn(t, "postgres")
	for range 20 {
		if _, err := c1.Exec(ctx, "SELECT txid_current()"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c2.Exec(ctx, "SELECT count(*) FROM generate_series(1, 3000000)"); err != nil {
		t.Fatal(err)
	}
	second := s.SampleAll(ctx)[0]
	if len(second.Errors) > 0 {
		t.Fatalf("errors: %v", second.Errors)
	}
	v := second.Values
	if cpu, ok := v[CPUUtilization]; !ok || cpu <= 0 || cpu > 100 {
		t.Fatalf("CPUUtilization %v (present %v): want a percentage above 0", cpu, ok)
	}
	if v[MaximumUsedTransactionIDs] < 20 || v[MaximumUsedTransactionIDs] > 1e6 {
		t.Fatalf("MaximumUsedTransactionIDs %v", v[MaximumUsedTransactionIDs])
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(srv.DataDir, &st); err != nil {
		t.Fatal(err)
	}
	if free := v[FreeLocalStorage]; free <= 0 || free > float64(st.Blocks*uint64(st.Bsize)) {
		t.Fatalf("FreeLocalStorage %v of %v", free, st.Blocks*uint64(st.Bsize))
	}
	if v[DatabaseConnections] != 2 {
		t.Fatalf("DatabaseConnections %v, want the 2 test connections (the sampler's own not counted)", v[DatabaseConnections])
	}
	if _, ok := v[ReplicaLag]; ok {
		t.Fatal("replica lag on a writer")
	}
	if len(seen) != 2 {
		t.Fatalf("OnSample saw %d samples", len(seen))
	}

	// A broken connection (a restarted server, a killed backend) is replaced at the next sample.
	if _, err := c1.Exec(ctx, "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"); err != nil {
		t.Fatal(err)
	}
	if smp := s.SampleAll(ctx)[0]; len(smp.Errors) > 0 || smp.Values[DatabaseConnections] != 1 {
		t.Fatalf("the sampler did not reconnect quietly: %+v", smp)
	}

	// The Prometheus endpoint shows the latest sample.
	h := httptest.NewServer(Handler(func() []Family { return s.Families("apgstack-database") }))
	defer h.Close()
	resp, err := http.Get(h.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Content-Type") != ContentType {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		"# TYPE apgstack_cpu_utilization_percent gauge\n",
		`apgstack_database_connections{cluster="apgstack-database",instance="instance1",role="WRITER"} 1` + "\n",
		`apgstack_free_local_storage_bytes{cluster="apgstack-database",instance="instance1",role="WRITER"} `,
	} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("exposition lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(string(body), "replica_lag") {
		t.Fatalf("replica lag family without rows shown:\n%s", body)
	}
}

func TestDeadInstanceReportsErrors(t *testing.T) {
	s := NewSampler(time.Second, func() []Target {
		return []Target{{Instance: "gone", Role: "READER", DataDir: "/nonexistent/data"}}
	})
	smp := s.SampleAll(context.Background())[0]
	if len(smp.Errors) != 2 || len(smp.Values) != 0 {
		t.Fatalf("sample %+v", smp)
	}
}
