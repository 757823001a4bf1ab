package cli

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/apgstack/apgstack/internal/twin/api"
)

func newStatusCmd(a *App) *cobra.Command {
	var lf localFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the database stack: instances with role, state, WAL position and lag, endpoints",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := a.target(cmd, lf)
			if err != nil {
				return err
			}
			return t.Status(cmd.Context())
		},
	}
	lf.add(cmd)
	addAWSFlags(cmd)
	return cmd
}

func printStatus(a *App, st api.Status) {
	w := a.Stdout
	fmt.Fprintf(w, "%s (%s) in %s: %s", st.Name, st.Stage, st.StateDir, st.Phase)
	if st.PID > 0 {
		fmt.Fprintf(w, ", supervisor pid %d", st.PID)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "engine version %s", st.EngineVersion)
	if st.ServerVersion != "" {
		fmt.Fprintf(w, ", running PostgreSQL %s", st.ServerVersion)
	}
	fmt.Fprintln(w)
	if st.VersionWarning != "" {
		fmt.Fprintln(w, "warning:", st.VersionWarning)
	}
	if len(st.MissingLibraries) > 0 {
		fmt.Fprintf(w, "warning: not installed here, left out of shared_preload_libraries: %s\n", strings.Join(st.MissingLibraries, ", "))
	}
	if st.SynchronousReplication {
		if st.Degraded {
			since := ""
			if st.DegradedSince != nil {
				since = " since " + st.DegradedSince.Format("2006-01-02 15:04:05Z07:00")
			}
			fmt.Fprintf(w, "replication: synchronous, DEGRADED%s (the writer commits alone; no reader may be promoted until one has caught up)\n", since)
		} else {
			fmt.Fprintln(w, "replication: synchronous")
		}
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tROLE\tSTATE\tPORT\tWAL POSITION\tLAG BYTES\tLAG SECONDS\tSYNC\tPROMOTABLE")
	for _, in := range st.Instances {
		lagB, lagS, prom := "-", "-", "-"
		if in.LagBytes != nil {
			lagB = fmt.Sprint(*in.LagBytes)
		}
		if in.LagSeconds != nil {
			lagS = fmt.Sprintf("%.3f", *in.LagSeconds)
		}
		if in.Role == api.RoleReader {
			prom = fmt.Sprint(in.Promotable)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", in.Name, in.Role, in.State, in.Port, dash(in.WALPosition), lagB, lagS, dash(in.SyncState), prom)
	}
	tw.Flush()
	for _, in := range st.Instances {
		if in.Error != "" {
			fmt.Fprintf(w, "%s: %s\n", in.Name, in.Error)
		}
	}
	if st.Phase == api.PhaseRestarting {
		endpoints := "the writer and reader endpoints are down until it serves"
		if len(st.Endpoints) > 0 && st.Endpoints[0].Path == api.EndpointPathKernel {
			endpoints = "the writer and reader endpoints go on through the kernel's rules"
		}
		fmt.Fprintf(w, "the supervisor died and its keeper is starting it again: %s; sessions made straight to an instance's port go on\n", endpoints)
	}
	if len(st.Endpoints) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ENDPOINT\tADDRESS\tBACKENDS\tCONNECTIONS\tPATH")
		for _, e := range st.Endpoints {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", e.Name, e.Address, strings.Join(e.Backends, ","), e.Connections, pathText(e.Path, e.PathReason))
		}
		tw.Flush()
	}
	for _, name := range slices.Sorted(maps.Keys(st.PendingReboot)) {
		fmt.Fprintf(w, "\n%s: pending-reboot: %s (`apgstack reboot --instance %s` applies it)", name, strings.Join(st.PendingReboot[name], "; "), name)
	}
	if len(st.PendingReboot) > 0 {
		fmt.Fprintln(w)
	}
	if st.MetricsEndpoint != "" {
		fmt.Fprintf(w, "\nmetrics: %s (Prometheus; `apgstack metrics` shows them with the alarms)\n", st.MetricsEndpoint)
	}
	fmt.Fprintln(w)
	printOutputs(w, st.Outputs)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// pathText is an endpoint's path with its reason ("kernel (nftables table apgstack_...)").
func pathText(path, why string) string {
	if path == "" {
		return "-"
	}
	if why == "" {
		return path
	}
	return path + " (" + why + ")"
}
