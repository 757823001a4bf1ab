package cli

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/internal/twin"
	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/supervisor"
)

func init() { register(newFailoverCmd) }

// runAWSFailover fails the cluster over on target aws; assigned by the AWS deploy's own file.
var runAWSFailover = func(cmd *cobra.Command, a *App, cfg apgstack.Config, target string) error {
	return Usagef("target aws: failover is not available in this build")
}

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
			cfg, err := a.Config(cmd)
			if err != nil {
				return err
			}
			if cfg.Target.Kind == apgstack.TargetAWS {
				return runAWSFailover(cmd, a, cfg, target)
			}
			asJSON, err := a.JSON()
			if err != nil {
				return err
			}
			dir, err := twin.StateDir(cfg, lf.stateDir)
			if err != nil {
				return Exit(ExitUsage, err)
			}
			c := api.NewClient(supervisor.Layout{Root: dir}.Socket())
			st, err := c.Status(cmd.Context())
			if errors.Is(err, api.ErrNotRunning) {
				return fmt.Errorf("the local twin in %s is not running: start it with apgstack up", dir)
			}
			if err != nil {
				return err
			}
			if target != "" {
				var readers []string
				for _, in := range st.Instances {
					if in.Role == api.RoleReader {
						readers = append(readers, in.Name)
					}
				}
				if !slices.Contains(readers, target) {
					list := "none"
					if len(readers) > 0 {
						list = strings.Join(readers, ", ")
					}
					return Usagef("--target-instance %q: not a reader of this cluster (readers: %s)", target, list)
				}
			}
			if err := a.Confirm(fmt.Sprintf("fail the writer of %s over? open sessions on it are cut", dir)); err != nil {
				return err
			}
			fmt.Fprintln(a.Stderr, "switching over ...")
			res, err := c.Failover(cmd.Context(), target)
			if err != nil {
				return err
			}
			if asJSON {
				return a.PrintJSON(res)
			}
			w := a.Stdout
			if res.NewWriter == res.OldWriter {
				fmt.Fprintf(w, "writer %s restarted in place (no reader to promote)\n", res.OldWriter)
			} else {
				fmt.Fprintf(w, "%s is the writer now (was %s)", res.NewWriter, res.OldWriter)
				if res.WriterLSN != "" {
					fmt.Fprintf(w, "; it replayed the old writer's WAL up to %s before promotion", res.WriterLSN)
				}
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "new connections held for %s; done in %s\n", res.Paused.Round(time.Millisecond), res.Duration.Round(time.Millisecond))
			if res.Rejoined && res.NewWriter != res.OldWriter {
				fmt.Fprintf(w, "%s runs as a reader\n", res.OldWriter)
			}
			if res.Warning != "" {
				fmt.Fprintln(a.Stderr, "warning:", res.Warning)
			}
			return nil
		},
	}
	lf.add(cmd)
	cmd.Flags().StringVar(&target, "target-instance", "", "the reader to promote (default: the most advanced one)")
	addAWSFlags(cmd)
	return cmd
}
