package cli

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/internal/aws/deploy"
)

func newUpgradeCmd(a *App) *cobra.Command {
	var lf localFlags
	var to string
	var deleteOld, link bool
	var confirmTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "upgrade --engine-version X",
		Short: "Upgrade the cluster's engine version (minor: in place; major: Blue/Green on AWS, pg_upgrade on the twin)",
		Long: `Upgrade the Aurora PostgreSQL engine.

On target aws a minor version goes through the stack (database.engineVersion, then an update with
a change set); a major version goes through an RDS Blue/Green deployment: parameter groups of the
new family with the best-practice settings, the green cluster created and waited for until it is
in sync, what will switch shown and confirmed (within --confirm-timeout), the switchover, the write
outage reported, and the old cluster deleted with a final snapshot when --delete-old is given.
Set database.engineVersion to the new version in apgstack.yaml afterwards so the stack agrees.

On the local target a minor version is an update of the twin (its instances restart, as
` + "`apgstack up --set database.engineVersion=X`" + ` does). A major version goes through pg_upgrade with
the twin stopped: the new major's server must be installed (else the upgrade is refused before
anything is touched, with the apt-get command to run); the writer's data is upgraded into a new
data directory (copied, or hard-linked with --link), its configuration carried over, the readers
are recreated from the upgraded writer by base backup, and the twin starts on the new major. The
old data directories are kept until --delete-old is given (with the upgrade, or in a later run
with the same --engine-version once the upgraded twin is checked).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" {
				return Usagef("--engine-version is required: the version to upgrade to (apgstack versions lists them)")
			}
			inv, err := a.invoke(cmd)
			if err != nil {
				return err
			}
			next := inv.cfg
			if err := next.Set("database.engineVersion", to); err != nil {
				return Exit(ExitUsage, err)
			}
			if err := next.Validate(); err != nil {
				return Exit(ExitUsage, err)
			}
			inv.cfg = next
			if next.Target.Kind != apgstack.TargetAWS {
				t, err := newLocalTarget(inv, lf)
				if err != nil {
					return err
				}
				return t.upgradeLocal(cmd.Context(), localUpgradeOptions{to: to, link: link, deleteOld: deleteOld, dryRun: flagBool(cmd, "dry-run")})
			}
			ctx := cmd.Context()
			d, _, err := awsDeployer(ctx, cmd, a, next)
			if err != nil {
				return err
			}
			res, err := d.Upgrade(ctx, next.Database.StackName, to, deploy.BlueGreenOptions{DeleteBlue: deleteOld,
				ConfirmTimeout: confirmTimeout, PgauditLog: next.Database.PgauditLog})
			if err != nil {
				d.View.Close()
				if errors.Is(err, deploy.ErrBadInput) || deploy.IsNotOffered(err) {
					return Exit(ExitUsage, err)
				}
				return awsExit(err)
			}
			if res.Plan.How == "stack" {
				d.View.Close()
				fmt.Fprintf(a.Stderr, "a minor version goes through the stack: updating %s to %s\n", next.Database.StackName, to)
				return awsUp(cmd, a, next)
			}
			d.View.Close()
			if inv.json {
				return a.PrintJSON(res)
			}
			bg := res.BlueGreen
			fmt.Fprintf(a.Stdout, "upgraded %s to %s through Blue/Green deployment %s (%s)\n", next.Database.StackName, to, bg.ID, strings.Join(bg.Statuses, " -> "))
			for _, s := range bg.Switched {
				fmt.Fprintf(a.Stdout, "  switched %s\n", s)
			}
			fmt.Fprintf(a.Stdout, "writes were refused for at most %s\n", bg.WriteOutage.Round(time.Second))
			if bg.OldCluster != "" && !bg.BlueDeleted {
				fmt.Fprintf(a.Stdout, "the old cluster %s is kept: delete it when you no longer need it (aws rds delete-db-cluster)\n", bg.OldCluster)
			}
			fmt.Fprintf(a.Stderr, "set database.engineVersion: %s in apgstack.yaml so that the stack agrees\n", to)
			return nil
		},
	}
	lf.add(cmd)
	f := cmd.Flags()
	f.StringVar(&to, "engine-version", "", "the Aurora PostgreSQL version to upgrade to")
	f.BoolVar(&deleteOld, "delete-old", false, "target aws: delete the old (blue) cluster after the switchover, with a final snapshot; local: delete the old data directories a major upgrade kept")
	f.BoolVar(&link, "link", false, "local major upgrade: pg_upgrade --link (hard links instead of a copy; the old data directory cannot be started afterwards)")
	f.DurationVar(&confirmTimeout, "confirm-timeout", 15*time.Minute, "target aws: how long to wait for the go-ahead to switch over")
	f.Bool("dry-run", false, "local: print the plan and change nothing")
	addAWSFlags(cmd)
	return cmd
}
