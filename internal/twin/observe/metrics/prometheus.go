package metrics

import (
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Family is one metric family of the Prometheus text exposition format (version 0.0.4).
type Family struct {
	Name string
	Help string
	Type string // gauge, counter
	Rows []Row
}

// Row is one sample of a family.
type Row struct {
	Labels map[string]string
	Value  float64
}

// ContentType is the exposition format's media type.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// WriteText writes families in the text exposition format: HELP and TYPE lines, then one line per
// row with its labels sorted; families without rows are left out.
func WriteText(w io.Writer, families []Family) error {
	var b strings.Builder
	for _, f := range families {
		if len(f.Rows) == 0 {
			continue
		}
		typ := f.Type
		if typ == "" {
			typ = "gauge"
		}
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", f.Name, escapeHelp(f.Help), f.Name, typ)
		for _, r := range f.Rows {
			b.WriteString(f.Name)
			if len(r.Labels) > 0 {
				keys := slices.Sorted(maps.Keys(r.Labels))
				b.WriteByte('{')
				for i, k := range keys {
					if i > 0 {
						b.WriteByte(',')
					}
					fmt.Fprintf(&b, "%s=\"%s\"", k, escapeLabel(r.Labels[k]))
				}
				b.WriteByte('}')
			}
			b.WriteByte(' ')
			b.WriteString(formatFloat(r.Value))
			b.WriteByte('\n')
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`).Replace(s)
}

func formatFloat(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// promNames maps each metric to its Prometheus name (base units, as Prometheus names them) and help.
var promNames = map[string][2]string{
	CPUUtilization:            {"apgstack_cpu_utilization_percent", "CPU used by the instance's processes, percent of all CPUs of the machine (CloudWatch CPUUtilization)"},
	MaximumUsedTransactionIDs: {"apgstack_maximum_used_transaction_ids", "Age of the oldest unfrozen transaction ID, max(age(datfrozenxid)) (CloudWatch MaximumUsedTransactionIDs)"},
	FreeLocalStorage:          {"apgstack_free_local_storage_bytes", "Space available on the data directory's file system (CloudWatch FreeLocalStorage)"},
	ReplicaLag:                {"apgstack_replica_lag_seconds", "Age of the last replayed transaction while a reader is behind, 0 when caught up"},
	ReplicaLagBytes:           {"apgstack_replica_lag_bytes", "WAL received by a reader but not yet replayed"},
	DatabaseConnections:       {"apgstack_database_connections", "Client connections (CloudWatch DatabaseConnections)"},
}

// Families renders the latest samples as metric families, labelled with the cluster, the
// instance and its role.
func (s *Sampler) Families(cluster string) []Family {
	latest := s.Latest()
	out := make([]Family, 0, len(Names))
	for _, name := range Names {
		p := promNames[name]
		f := Family{Name: p[0], Help: p[1], Type: "gauge"}
		for _, smp := range latest {
			if v, ok := smp.Values[name]; ok {
				f.Rows = append(f.Rows, Row{Labels: map[string]string{"cluster": cluster, "instance": smp.Instance, "role": smp.Role}, Value: v})
			}
		}
		out = append(out, f)
	}
	return out
}

// Handler serves /metrics from the families gather returns at each scrape.
func Handler(gather func() []Family) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ContentType)
		_ = WriteText(w, gather())
	})
	return mux
}

// ListenLoopback listens on 127.0.0.1:port (0 picks a free port): the metrics are for this
// machine only.
func ListenLoopback(port int) (net.Listener, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("metrics endpoint on 127.0.0.1:%d: %w", port, err)
	}
	return ln, nil
}
