package cli

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/internal/twin"
)

func newEnvCmd(a *App) *cobra.Command {
	var lf localFlags
	var reader bool
	var role string
	cmd := &cobra.Command{
		Use:   "env [--reader] [--role master|owner|rw|ro]",
		Short: "Print the libpq environment of an endpoint (PGHOST ... PGPASSFILE) for eval",
		Long: `Print export lines for PGHOST, PGPORT, PGDATABASE, PGUSER, PGSSLMODE=verify-full,
PGSSLROOTCERT and PGPASSFILE, so that psql, pg_dump and most drivers connect to the twin with
nothing copied by hand. The password is never printed: it is in the password file (mode 0600,
in the state directory), which holds the current password each time env runs.

  eval "$(apgstack env)"
  eval "$(apgstack env --reader --role ro)"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains(bestpractice.RotationRoles, role) {
				return Usagef("--role %q: allowed are %s", role, strings.Join(bestpractice.RotationRoles, ", "))
			}
			inv, err := a.invoke(cmd)
			if err != nil {
				return err
			}
			if inv.cfg.Target.Kind == apgstack.TargetAWS {
				return Usagef("target aws: env is the local twin's; `apgstack psql --target aws` connects through the bastion")
			}
			t, err := newLocalTarget(inv, lf)
			if err != nil {
				return err
			}
			if err := t.existing(); err != nil {
				return err
			}
			env, err := twin.Env(t.cfg, t.dir, reader, role)
			if err != nil {
				return err
			}
			for _, kv := range env {
				k, v, _ := strings.Cut(kv, "=")
				fmt.Fprintf(a.Stdout, "export %s=%s\n", k, shellQuote(v))
			}
			return nil
		},
	}
	lf.add(cmd)
	cmd.Flags().BoolVar(&reader, "reader", false, "the reader endpoint")
	cmd.Flags().StringVar(&role, "role", bestpractice.RoleMaster, "whose login: "+strings.Join(bestpractice.RotationRoles, ", "))
	_ = cmd.RegisterFlagCompletionFunc("role", cobra.FixedCompletions(bestpractice.RotationRoles, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// shellQuote quotes a value for POSIX shells.
func shellQuote(v string) string {
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}
