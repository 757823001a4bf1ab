package cli

import (
	"errors"
	"os"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/internal/twin"
)

func init() { register(newPSQLCmd) }

// runAWSPSQL connects on target aws; assigned by the AWS deploy's own file.
var runAWSPSQL = func(cmd *cobra.Command, a *App, cfg apgstack.Config, reader bool, args []string) error {
	return Usagef("target aws: psql is not available in this build")
}

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
			cfg, err := a.Config(cmd)
			if err != nil {
				return err
			}
			if cfg.Target.Kind == apgstack.TargetAWS {
				return runAWSPSQL(cmd, a, cfg, reader, args)
			}
			dir, err := twin.StateDir(cfg, lf.stateDir)
			if err != nil {
				return Exit(ExitUsage, err)
			}
			bin, err := twin.PSQLBinary()
			if err != nil {
				return err
			}
			p, err := twin.PSQLEnv(cfg, dir, reader)
			if err != nil {
				return err
			}
			defer p.Cleanup()
			c := exec.Command(bin, args...)
			c.Stdin, c.Stdout, c.Stderr = a.Stdin, a.Stdout, a.Stderr
			c.Env = append(withoutPG(os.Environ()), p.Env...)
			if err := c.Run(); err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					return Exit(ee.ExitCode(), errors.New("psql failed"))
				}
				return err
			}
			return nil
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
