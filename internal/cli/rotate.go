package cli

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/internal/twin"
	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/supervisor"
)

func init() { register(newRotateCmd) }

// runAWSRotate rotates on target aws; assigned by the AWS deploy's own file.
var runAWSRotate = func(cmd *cobra.Command, a *App, cfg apgstack.Config, role string) error {
	return Usagef("target aws: rotate-secret is not available in this build")
}

func newRotateCmd(a *App) *cobra.Command {
	var lf localFlags
	var role string
	roles := append(slices.Clone(api.RotationRoles), "all")
	cmd := &cobra.Command{
		Use:   "rotate-secret [--role master|owner|rw|ro|all]",
		Short: "Rotate the master secret or an application role's secret now",
		Long: `Rotate a database secret now, in the four steps of Secrets Manager rotation: createSecret
(a new password under AWSPENDING), setSecret (the role gets it, sent as a SCRAM verifier),
testSecret (a TLS login with it), finishSecret (AWSPENDING becomes AWSCURRENT, the old one
AWSPREVIOUS). Sessions already open keep working; new ones need the new password.
A failed step leaves AWSCURRENT working and is recorded as an event. Secrets also rotate by
themselves every 30 days (target.local.rotationInterval overrides the period).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains(roles, role) {
				return Usagef("--role %q: allowed are %s", role, strings.Join(roles, ", "))
			}
			cfg, err := a.Config(cmd)
			if err != nil {
				return err
			}
			if cfg.Target.Kind == apgstack.TargetAWS {
				return runAWSRotate(cmd, a, cfg, role)
			}
			asJSON, err := a.JSON()
			if err != nil {
				return err
			}
			dir, err := twin.StateDir(cfg, lf.stateDir)
			if err != nil {
				return Exit(ExitUsage, err)
			}
			res, err := api.NewClient(supervisor.Layout{Root: dir}.Socket()).RotateSecret(cmd.Context(), role)
			if errors.Is(err, api.ErrNotRunning) {
				return fmt.Errorf("the local twin in %s is not running: start it with apgstack up", dir)
			}
			if err != nil {
				return err
			}
			failed := 0
			for _, r := range res {
				if r.Error != "" {
					failed++
				}
			}
			if asJSON {
				if err := a.PrintJSON(res); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ROLE\tSECRET\tUSER\tAWSCURRENT\tTOOK")
				for _, r := range res {
					if r.Error != "" {
						fmt.Fprintf(tw, "%s\t%s\t\tfailed\t\n", r.Role, r.Secret)
						continue
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Role, r.Secret, r.Username, r.VersionID, r.Duration.Round(time.Millisecond))
				}
				tw.Flush()
			}
			for _, r := range res {
				if r.Error != "" {
					fmt.Fprintf(a.Stderr, "error: %s\n", r.Error)
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d rotations failed; their AWSCURRENT versions still work", failed, len(res))
			}
			return nil
		},
	}
	lf.add(cmd)
	cmd.Flags().StringVar(&role, "role", "master", "whose secret: "+strings.Join(roles, ", "))
	addAWSFlags(cmd)
	return cmd
}
