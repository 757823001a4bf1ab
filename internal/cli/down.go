package cli

import (
	"github.com/spf13/cobra"
)

func newDownCmd(a *App) *cobra.Command {
	var lf localFlags
	var del, skipFinal bool
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop the database stack (local: every server and the supervisor; --delete removes the state)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := a.target(cmd, lf)
			if err != nil {
				return err
			}
			return t.Down(cmd.Context(), DownOptions{Delete: del, SkipFinalSnapshot: skipFinal})
		},
	}
	lf.add(cmd)
	cmd.Flags().BoolVar(&del, "delete", false, "also delete the state directory (data, secrets, certificates); asks unless --yes")
	cmd.Flags().BoolVar(&skipFinal, "skip-final-snapshot", false, "stop without taking a final snapshot of the running twin")
	addAWSFlags(cmd)
	return cmd
}
