package cli

import (
	"context"
	"fmt"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/backup"
	"github.com/apgstack/apgstack/internal/twin/supervisor"
)

func init() { register(newSnapshotCmd) }

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
			asJSON, err := a.JSON()
			if err != nil {
				return err
			}
			if err := backup.CheckSnapshotName(args[0]); err != nil {
				return Exit(ExitUsage, err)
			}
			_, dir, err := localTwin(a, cmd, clf, "snapshot")
			if err != nil {
				return err
			}
			var sn backup.Snapshot
			if err := callSupervisor(cmd.Context(), dir, http.MethodPost, supervisor.PathSnapshots, supervisor.SnapshotRequest{Name: args[0]}, &sn); err != nil {
				return err
			}
			return printSnapshots(a, []backup.Snapshot{sn}, asJSON)
		},
	}
	clf.add(create)

	var llf localFlags
	list := &cobra.Command{
		Use:   "list",
		Short: "List the snapshots beside the twin's state directory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := a.JSON()
			if err != nil {
				return err
			}
			_, dir, err := localTwin(a, cmd, llf, "snapshot")
			if err != nil {
				return err
			}
			store := backup.Snapshots{Dir: supervisor.Layout{Root: dir}.SnapshotDir()}
			list, err := store.List()
			if err != nil {
				return err
			}
			if list == nil {
				list = []backup.Snapshot{}
			}
			return printSnapshots(a, list, asJSON)
		},
	}
	llf.add(list)

	var dlf localFlags
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a snapshot (asks unless --yes)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := backup.CheckSnapshotName(args[0]); err != nil {
				return Exit(ExitUsage, err)
			}
			_, dir, err := localTwin(a, cmd, dlf, "snapshot")
			if err != nil {
				return err
			}
			store := backup.Snapshots{Dir: supervisor.Layout{Root: dir}.SnapshotDir()}
			sn, err := store.Get(args[0])
			if err != nil {
				return err
			}
			if err := a.Confirm(fmt.Sprintf("delete snapshot %s (%s, taken %s)?", sn.Name, sn.Cluster, sn.Created.Format(time.RFC3339))); err != nil {
				return err
			}
			if err := store.Delete(sn.Name); err != nil {
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

func printSnapshots(a *App, list []backup.Snapshot, asJSON bool) error {
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

// finalSnapshot snapshots a running twin before `down` stops it, as the database stack takes a
// final snapshot when the cluster is deleted; nothing running, nothing to snapshot. A failed
// snapshot stops the teardown (as on AWS), naming the way around it.
func finalSnapshot(ctx context.Context, a *App, cfg apgstack.Config, dir string) error {
	c := api.NewClient(supervisor.Layout{Root: dir}.Socket())
	if _, err := c.Status(ctx); err != nil {
		return nil
	}
	name := cfg.Database.StackName + "-final-" + time.Now().UTC().Format("20060102-150405")
	var sn backup.Snapshot
	if err := c.Call(ctx, http.MethodPost, supervisor.PathSnapshots, supervisor.SnapshotRequest{Name: name, Kind: "final"}, &sn); err != nil {
		return fmt.Errorf("final snapshot (pass --skip-final-snapshot to stop without one): %w", err)
	}
	fmt.Fprintf(a.Stderr, "final snapshot %s taken in %s (database.snapshotName: %s restores it)\n", sn.Name, sn.Dir, sn.Name)
	return nil
}
