package cli

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/spf13/cobra"
)

func newMetricsCmd(a *App) *cobra.Command {
	var lf localFlags
	cmd := &cobra.Command{
		Use:   "metrics",
		Short: "Show the local twin's latest metrics and alarm states, and its Prometheus endpoint",
		Long: `Show the metrics the supervisor samples on each instance — CPUUtilization (percent of all the
machine's CPUs used by the instance's processes), MaximumUsedTransactionIDs, FreeLocalStorage,
ReplicaLag (seconds; readers), DatabaseConnections — every 60 s, every second for prod (enhanced
monitoring), the best-practice alarms on the WRITER and READER roles with their state, and the
Prometheus endpoint on loopback that serves the same.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := a.localTwin(cmd, lf, "metrics")
			if err != nil {
				return err
			}
			rep, err := t.client().Metrics(cmd.Context())
			if err != nil {
				return t.notRunning(err)
			}
			if t.json {
				return a.PrintJSON(rep)
			}
			printMetrics(a, rep)
			return nil
		},
	}
	lf.add(cmd)
	return cmd
}

func printMetrics(a *App, rep api.MetricsReport) {
	w := a.Stdout
	fmt.Fprintf(w, "%s: sampled every %s; Prometheus endpoint %s\n\n", rep.Cluster, rep.Interval, dash(rep.Endpoint))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tROLE\tTIME\tMETRIC\tVALUE")
	for _, s := range rep.Samples {
		for _, name := range api.MetricNames() {
			v, ok := s.Values[name]
			if !ok {
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Instance, s.Role, s.Time.Format("15:04:05Z07:00"), name, metricValue(name, v))
		}
		for _, e := range s.Errors {
			fmt.Fprintf(tw, "%s\t%s\t%s\terror\t%s\n", s.Instance, s.Role, s.Time.Format("15:04:05Z07:00"), e)
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	alarms := rep.Alarms
	sort.SliceStable(alarms, func(i, j int) bool { return alarms[i].Name < alarms[j].Name })
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ALARM\tSTATE\tSINCE\tCONDITION")
	for _, al := range alarms {
		cond := fmt.Sprintf("%s %s %s %s, %d periods of %s", al.Statistic, al.Metric, comparisonWord(al.Comparison), strconv.FormatFloat(al.Threshold, 'f', -1, 64), al.Evaluations, al.Period)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", al.Name, al.State, al.Since.Format("2006-01-02 15:04:05Z07:00"), cond)
	}
	tw.Flush()
	if n := rep.Notifications; n != nil {
		fmt.Fprintf(w, "\nnotifications: %d sent, %d queued, %d failed, %d dropped\n", n.Sent, n.Queued, n.Failed, n.Dropped)
	}
}

func metricValue(name string, v float64) string {
	switch name {
	case api.MetricCPUUtilization:
		return fmt.Sprintf("%.1f %%", v)
	case api.MetricFreeLocalStorage, api.MetricReplicaLagBytes:
		return bytesHuman(int64(v))
	case api.MetricReplicaLag:
		return fmt.Sprintf("%.3f s", v)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func comparisonWord(c string) string {
	return strings.NewReplacer("GreaterThanOrEqualToThreshold", ">=", "GreaterThanThreshold", ">",
		"LessThanOrEqualToThreshold", "<=", "LessThanThreshold", "<").Replace(c)
}
