package cli

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/internal/twin"
)

func newLogsCmd(a *App) *cobra.Command {
	var lf localFlags
	var instance, since string
	var withSupervisor, follow bool
	cmd := &cobra.Command{
		Use:   "logs [--instance NAME] [--supervisor] [--follow] [--since 10m]",
		Short: "Show the local twin's server logs and the supervisor's log",
		Long: `Show the logs of the local twin: the supervisor's and every server's (each line prefixed with
its source), one server's (--instance), or the supervisor's alone (--supervisor). --since keeps
the lines of the last duration (10m) or since an RFC 3339 time; --follow goes on printing what is
written, as tail -f does, until interrupted.`,
		Example: `  apgstack logs --since 10m
  apgstack logs --instance instance1 --follow`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cutoff time.Time
			if since != "" {
				var err error
				if cutoff, err = (eventFilter{since: since}).check(time.Now()); err != nil {
					return err
				}
			}
			inv, err := a.invoke(cmd)
			if err != nil {
				return err
			}
			if inv.cfg.Target.Kind == apgstack.TargetAWS {
				return Usagef("target aws: the cluster's logs are in CloudWatch Logs (/aws/rds/cluster/<cluster>/postgresql)")
			}
			t, err := newLocalTarget(inv, lf)
			if err != nil {
				return err
			}
			if err := t.existing(); err != nil {
				return err
			}
			sources, err := twin.LogSources(t.dir, instance, withSupervisor)
			if err != nil {
				return Exit(ExitUsage, err)
			}
			return twin.WriteLogs(cmd.Context(), a.Stdout, sources, cutoff, follow)
		},
	}
	lf.add(cmd)
	f := cmd.Flags()
	f.StringVar(&instance, "instance", "", "only this instance's server log")
	a.completeInstances(cmd, "instance", false)
	f.BoolVar(&withSupervisor, "supervisor", false, "the supervisor's log (alone unless --instance is given too)")
	f.BoolVarP(&follow, "follow", "f", false, "go on printing what is written")
	f.StringVar(&since, "since", "", "only lines newer than this: a duration (10m) or an RFC 3339 time")
	return cmd
}
