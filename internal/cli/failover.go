package cli

import (
	"github.com/spf13/cobra"
)

func newFailoverCmd(a *App) *cobra.Command {
	var lf localFlags
	var target string
	cmd := &cobra.Command{
		Use:   "failover [--target-instance NAME]",
		Short: "Switch the writer over to a reader with no acknowledged write lost",
		Long: `Perform a planned switchover, as aws rds failover-db-cluster does: the cluster (writer)
endpoint holds new connections, the writer's sessions end (clients reconnect), the writer
checkpoints and shuts down cleanly, the reader replays everything the writer wrote and is promoted,
the endpoint is repointed to it and released, and the old writer rejoins as a reader. On a cluster
with a single instance (dev, test) the writer restarts in place.

Unplanned failover needs no command: the supervisor does it when the writer dies or hangs.

With --target aws it calls aws rds failover-db-cluster on the database stack's cluster and waits
until the cluster is available with the new writer; dev and test clusters have one instance and
no failover target.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := a.target(cmd, lf)
			if err != nil {
				return err
			}
			return t.Failover(cmd.Context(), target)
		},
	}
	lf.add(cmd)
	cmd.Flags().StringVar(&target, "target-instance", "", "the reader to promote (default: the most advanced one)")
	a.completeInstances(cmd, "target-instance", true)
	addAWSFlags(cmd)
	return cmd
}
