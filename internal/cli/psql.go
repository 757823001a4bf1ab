package cli

import (
	"strings"

	"github.com/spf13/cobra"
)

func newPSQLCmd(a *App) *cobra.Command {
	var lf localFlags
	var reader bool
	cmd := &cobra.Command{
		Use:   "psql [--reader] [-- psql arguments]",
		Short: "Open psql on the cluster (writer) endpoint, or the reader endpoint, as the master user",
		Long: `Open psql on the cluster endpoint (or --reader: the reader endpoint) as the master user,
with sslmode=verify-full against the local CA bundle. The password is taken from the secret
store and handed to psql in a temporary 0600 password file, never on the command line.
Arguments after -- go to psql, e.g.: apgstack psql -- -c 'select version()'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := a.target(cmd, lf)
			if err != nil {
				return err
			}
			return t.PSQL(cmd.Context(), reader, args)
		},
	}
	lf.add(cmd)
	cmd.Flags().BoolVar(&reader, "reader", false, "connect through the reader endpoint")
	addAWSFlags(cmd)
	return cmd
}

// withoutPG drops the caller's PG* variables (PGPASSWORD, PGHOST, ...) so they cannot override
// the connection apgstack sets up.
func withoutPG(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "PG") {
			out = append(out, kv)
		}
	}
	return out
}
