package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/internal/twin"
	"github.com/apgstack/apgstack/internal/twin/statedir"
)

func init() { register(newDownCmd) }

// runAWSDown tears the stacks down on target aws; assigned by the AWS deploy's own file.
var runAWSDown = func(cmd *cobra.Command, a *App, cfg apgstack.Config) error {
	return Usagef("target aws: teardown is not available in this build")
}

func newDownCmd(a *App) *cobra.Command {
	var lf localFlags
	var del, skipFinal bool
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop the database stack (local: every server and the supervisor; --delete removes the state)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.Config(cmd)
			if err != nil {
				return err
			}
			if cfg.Target.Kind == apgstack.TargetAWS {
				return runAWSDown(cmd, a, cfg)
			}
			dir, err := twin.StateDir(cfg, lf.stateDir)
			if err != nil {
				return Exit(ExitUsage, err)
			}
			if del {
				// Refused before anything is stopped: only a twin's own directory is deleted.
				if err := statedir.CheckRemovable(dir); err != nil {
					return err
				}
				if _, err := os.Stat(dir); err == nil {
					if err := a.Confirm(fmt.Sprintf("delete %s with the cluster's data, secrets and certificates?", dir)); err != nil {
						return err
					}
				}
			}
			if !skipFinal {
				if err := finalSnapshot(cmd.Context(), a, cfg, dir); err != nil {
					return err
				}
			}
			ran, err := twin.Down(cmd.Context(), dir)
			if err != nil {
				return err
			}
			if ran {
				fmt.Fprintf(a.Stderr, "stopped the local twin in %s\n", dir)
			} else {
				fmt.Fprintf(a.Stderr, "nothing runs for %s\n", dir)
			}
			if del {
				if err := twin.RemoveStateDir(cfg, lf.stateDir, dir); err != nil {
					return err
				}
				fmt.Fprintf(a.Stderr, "deleted %s\n", dir)
			}
			return nil
		},
	}
	lf.add(cmd)
	cmd.Flags().BoolVar(&del, "delete", false, "also delete the state directory (data, secrets, certificates); asks unless --yes")
	cmd.Flags().BoolVar(&skipFinal, "skip-final-snapshot", false, "stop without taking a final snapshot of the running twin (snapshot.go)")
	addAWSFlags(cmd)
	return cmd
}
