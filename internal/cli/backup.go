package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/apgstack/apgstack/internal/twin"
	"github.com/apgstack/apgstack/internal/twin/api"
)

func newBackupCmd(a *App) *cobra.Command {
	var lf localFlags
	var typ string
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Take a backup of the local twin now (pgBackRest: full, diff or incr)",
		Long: `Take a backup of the running local twin now, into its encrypted pgBackRest repository in
the state directory, then expire what the stage's retention (7 days, 35 for prod) no longer keeps.
The supervisor also backs up on its own: WAL continuously, a full backup a minute after creation,
then in the stack's backup window (03:00-04:00 UTC) a full one weekly and an incremental one
daily, so that "apgstack restore --to-time" reaches any moment of the retention window.
"apgstack backup list" shows the backups.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if typ != api.BackupFull && typ != api.BackupDiff && typ != api.BackupIncr {
				return Usagef("--type %q: allowed values are full, diff and incr", typ)
			}
			t, err := a.localTwin(cmd, lf, "backup")
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Stderr, "taking a %s backup of the twin in %s\n", typ, t.dir)
			info, err := t.client().BackupNow(cmd.Context(), typ)
			if err != nil {
				return remoteExit(t.notRunning(err))
			}
			// The newest backup is the one just taken; pgBackRest makes it full when there is
			// no full backup to build on.
			if n := len(info.Backups); n > 0 {
				set := info.Backups[n-1]
				fmt.Fprintf(a.Stderr, "took %s backup %s\n", set.Type, set.Label)
				if set.Promoted(typ) {
					fmt.Fprintf(a.Stderr, "note: a full backup instead of the %s asked for: there was no full backup to build on\n", typ)
				}
			}
			return printBackups(a, info, t.json)
		},
	}
	lf.add(cmd)
	cmd.Flags().StringVar(&typ, "type", api.BackupIncr, "full, diff (changes since the last full) or incr (changes since the last backup)")

	var llf localFlags
	list := &cobra.Command{
		Use:   "list",
		Short: "List the local twin's backups and the restorable window",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := a.localTwin(cmd, llf, "backup list")
			if err != nil {
				return err
			}
			info, err := twin.Backups(cmd.Context(), t.cfg, t.dir)
			if err != nil {
				return err
			}
			return printBackups(a, info, t.json)
		},
	}
	llf.add(list)
	cmd.AddCommand(list)
	return cmd
}

func printBackups(a *App, info api.BackupInfo, asJSON bool) error {
	if asJSON {
		if info.Backups == nil {
			info.Backups = []api.BackupSet{}
		}
		return a.PrintJSON(info)
	}
	fmt.Fprintf(a.Stdout, "stanza %s: %s, %s\n", info.Stanza, info.Status, info.Cipher)
	if e := info.EarliestRestorable(); !e.IsZero() {
		fmt.Fprintf(a.Stdout, "restorable from %s to the last archived WAL (%s)\n", e.Format(time.RFC3339), info.WALMax)
	}
	tw := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LABEL\tTYPE\tSTARTED\tFINISHED\tSIZE\tIN REPOSITORY")
	for _, b := range info.Backups {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", b.Label, b.Type, b.Start.Format(time.RFC3339), b.Stop.Format(time.RFC3339), bytesHuman(b.Size), bytesHuman(b.RepoSize))
	}
	return tw.Flush()
}

func bytesHuman(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
