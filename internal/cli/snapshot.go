package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/apgstack/apgstack/internal/twin"
	"github.com/apgstack/apgstack/internal/twin/api"
)

func newSnapshotCmd(a *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Create, list and delete snapshots of the local twin",
		Long: `Snapshots are self-contained copies of the local twin's data (a base backup with the WAL it
needs), kept beside the state directory in .apgstack-snapshots, so that they outlive the twin
("down --delete") as DB cluster snapshots outlive their cluster, and are not expired by the backup
retention. database.snapshotName (DBSnapshotName) in apgstack.yaml creates a new twin from one,
without the bootstrap. "apgstack down" takes a final snapshot unless --skip-final-snapshot.`,
	}
	var clf localFlags
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Snapshot the running twin's writer",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := twin.CheckSnapshotName(args[0]); err != nil {
				return Exit(ExitUsage, err)
			}
			t, err := a.localTwin(cmd, clf, "snapshot")
			if err != nil {
				return err
			}
			sn, err := t.client().CreateSnapshot(cmd.Context(), args[0], "")
			if err != nil {
				return remoteExit(t.notRunning(err))
			}
			return printSnapshots(a, []api.Snapshot{sn}, t.json)
		},
	}
	clf.add(create)

	var llf localFlags
	list := &cobra.Command{
		Use:   "list",
		Short: "List the snapshots beside the twin's state directory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := a.localDir(cmd, llf, "snapshot")
			if err != nil {
				return err
			}
			home, err := twin.SnapshotHome(t.cfg, llf.stateDir)
			if err != nil {
				return Exit(ExitUsage, err)
			}
			list, err := twin.ListSnapshots(home)
			if err != nil {
				return err
			}
			if list == nil {
				list = []api.Snapshot{}
			}
			return printSnapshots(a, list, t.json)
		},
	}
	llf.add(list)

	var dlf localFlags
	del := &cobra.Command{
		Use:               "delete NAME",
		Short:             "Delete a snapshot (asks unless --yes)",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.snapshotNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := twin.CheckSnapshotName(args[0]); err != nil {
				return Exit(ExitUsage, err)
			}
			t, err := a.localDir(cmd, dlf, "snapshot")
			if err != nil {
				return err
			}
			home, err := twin.SnapshotHome(t.cfg, dlf.stateDir)
			if err != nil {
				return Exit(ExitUsage, err)
			}
			sn, err := twin.GetSnapshot(home, args[0])
			if err != nil {
				return err
			}
			if err := a.Confirm(fmt.Sprintf("delete snapshot %s (%s, taken %s)?", sn.Name, sn.Cluster, sn.Created.Format(time.RFC3339))); err != nil {
				return err
			}
			if err := twin.DeleteSnapshot(home, sn.Name); err != nil {
				return err
			}
			fmt.Fprintf(a.Stderr, "deleted snapshot %s\n", sn.Name)
			return nil
		},
	}
	dlf.add(del)
	cmd.AddCommand(create, list, del)
	return cmd
}

func printSnapshots(a *App, list []api.Snapshot, asJSON bool) error {
	if asJSON {
		return a.PrintJSON(list)
	}
	tw := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tCLUSTER\tCREATED\tPOSTGRESQL\tSIZE")
	for _, s := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", s.Name, s.Kind, s.Cluster, s.Created.Format(time.RFC3339), s.ServerMajor, bytesHuman(s.Size))
	}
	return tw.Flush()
}
