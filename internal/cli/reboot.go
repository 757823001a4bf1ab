package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/apgstack/apgstack"
)

func newRebootCmd(a *App) *cobra.Command {
	var lf localFlags
	var name string
	var failover bool
	cmd := &cobra.Command{
		Use:   "reboot [--instance NAME] [--failover]",
		Short: "Restart an instance of the local twin, applying what is pending-reboot (RDS RebootDBInstance)",
		Long: `Restart one instance of the local twin, as aws rds reboot-db-instance does, and apply the changes
pending on it (status shows them as pending-reboot). Without --instance the writer restarts in place:
its sessions end and the writer endpoint holds new connections until it is back. With --failover
the writer hands over to a reader first (a planned switchover, no acknowledged write lost), as
--force-failover does.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			inv, err := a.invoke(cmd)
			if err != nil {
				return err
			}
			if inv.cfg.Target.Kind == apgstack.TargetAWS {
				return Usagef("target aws: reboot an instance with aws rds reboot-db-instance (--force-failover for the writer)")
			}
			t, err := newLocalTarget(inv, lf)
			if err != nil {
				return err
			}
			if err := t.existing(); err != nil {
				return err
			}
			what := "the writer"
			if name != "" {
				what = name
			}
			if err := a.Confirm(fmt.Sprintf("reboot %s of the twin in %s? its sessions end", what, t.dir)); err != nil {
				return err
			}
			res, err := t.client().Reboot(cmd.Context(), name, failover)
			if err != nil {
				return remoteExit(t.notRunning(err))
			}
			if t.json {
				return a.PrintJSON(res)
			}
			fmt.Fprintf(a.Stdout, "%s rebooted in %s", res.Instance, res.Duration.Round(time.Millisecond))
			if res.Failover != nil {
				fmt.Fprintf(a.Stdout, "; %s is the writer now", res.Failover.NewWriter)
			}
			fmt.Fprintln(a.Stdout)
			if len(res.Applied) > 0 {
				fmt.Fprintf(a.Stdout, "applied: %s\n", strings.Join(res.Applied, "; "))
			}
			return nil
		},
	}
	lf.add(cmd)
	cmd.Flags().StringVar(&name, "instance", "", "the instance to restart (default: the writer)")
	a.completeInstances(cmd, "instance", false)
	cmd.Flags().BoolVar(&failover, "failover", false, "the writer fails over to a reader instead of restarting in place")
	return cmd
}
