package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/internal/twin/api"
)

func newChaosCmd(a *App) *cobra.Command {
	var lf localFlags
	var dur time.Duration
	var name string
	cmd := &cobra.Command{
		Use:   "chaos crash-writer|hang-writer --for 10s|crash-reader|stall-replication --for 30s|drop-connections",
		Short: "Inject a fault into the local twin (a test of what the application does when Aurora fails)",
		Long: `Inject a fault into the running local twin, with real signals and real sessions:

  crash-writer       SIGKILL of the writer's postmaster: a failover follows (dev, test: a restart in place)
  hang-writer        SIGSTOP of the writer's postmaster for --for, then SIGCONT; longer than the health
                     checks allow, the writer is fenced and a failover follows
  crash-reader       SIGKILL of a reader's postmaster; it is restarted as Aurora replaces an instance
  stall-replication  SIGSTOP of a reader's WAL receiver for --for: the replica lag grows, then recovers
                     (prod: commits wait until the writer degrades to asynchronous replication)
  drop-connections   pg_terminate_backend of every client session on every instance

--instance picks the reader of crash-reader and stall-replication (default: the first reader).
The same faults can be asked from SQL by a member of rds_superuser: aurora_inject_crash(...) and
the other aurora_inject_* functions (see the README).`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: api.ChaosFaults,
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.ChaosRequest{Fault: args[0], For: dur, Instance: name}
			if err := req.Check(); err != nil {
				return Usagef("%v", err)
			}
			inv, err := a.invoke(cmd)
			if err != nil {
				return err
			}
			if inv.cfg.Target.Kind == apgstack.TargetAWS {
				return Usagef("target aws: inject faults on Aurora with its SQL functions (aurora_inject_crash, ...) or the AWS Fault Injection Service")
			}
			t, err := newLocalTarget(inv, lf)
			if err != nil {
				return err
			}
			if err := t.existing(); err != nil {
				return err
			}
			res, err := t.client().Chaos(cmd.Context(), req)
			if err != nil {
				return remoteExit(t.notRunning(err))
			}
			if t.json {
				return a.PrintJSON(res)
			}
			fmt.Fprintf(a.Stdout, "%s: %s\n", res.Fault, res.Detail)
			return nil
		},
	}
	lf.add(cmd)
	cmd.Flags().DurationVar(&dur, "for", 0, "how long hang-writer and stall-replication last (e.g. 10s)")
	cmd.Flags().StringVar(&name, "instance", "", "the reader of crash-reader and stall-replication (default: the first reader)")
	return cmd
}
