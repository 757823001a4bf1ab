package cli

import (
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/apgstack/apgstack/internal/twin/api"
)

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
			t, err := a.target(cmd, lf)
			if err != nil {
				return err
			}
			return t.RotateSecret(cmd.Context(), role)
		},
	}
	lf.add(cmd)
	cmd.Flags().StringVar(&role, "role", "master", "whose secret: "+strings.Join(roles, ", "))
	addAWSFlags(cmd)
	return cmd
}
