package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/apgstack/apgstack/internal/twin"
	"github.com/apgstack/apgstack/internal/twin/api"
)

// localFlags are the flags every local-twin command shares.
type localFlags struct {
	stateDir string
}

func (f *localFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.stateDir, "state-dir", "", "the local twin's state directory (default target.local.stateDir, .apgstack under the working directory)")
}

func newUpCmd(a *App) *cobra.Command {
	var lf localFlags
	var strict, foreground bool
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Bring the database stack up on the configured target (local: a twin on this machine)",
		Long: `Bring the database stack up. On the local target (the default) a supervisor runs real
PostgreSQL servers as the database stack describes them: a writer, and for pre-prod and prod a
reader fed by streaming replication (synchronous for prod), a cluster (writer) endpoint on
database.port and a reader endpoint on target.local.readerPort (default port+1), TLS required,
the best-practice parameter groups, the master secret in a local secret store, and the bootstrap.

Everything lives in the state directory. The servers run as an unprivileged account (postgres
when apgstack runs as root), which must be able to reach the state directory. Running up again
on the same state directory restarts the same cluster with its data.

The stack's outputs are printed on stdout (--output json for JSON); progress goes to stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := a.target(cmd, lf)
			if err != nil {
				return err
			}
			return t.Up(cmd.Context(), UpOptions{Strict: strict, Foreground: foreground, DryRun: flagBool(cmd, "dry-run")})
		},
	}
	lf.add(cmd)
	cmd.Flags().BoolVar(&strict, "strict-version", false, "refuse to run on a PostgreSQL major other than database.engineVersion's (target.local.strictVersion)")
	cmd.Flags().BoolVar(&foreground, "foreground", false, "run the supervisor in this process until interrupted")
	addAWSFlags(cmd)
	return cmd
}

// printUp prints the stack's outputs (data, stdout) and the notes around them (stderr). The
// version and library notices are said once: in the foreground the supervisor's log, which is
// on stderr then, has already said them (logged), so they are not repeated.
func printUp(a *App, st api.Status, asJSON, logged bool) error {
	if !logged {
		if st.VersionWarning != "" {
			fmt.Fprintln(a.Stderr, "warning:", st.VersionWarning)
		}
		for _, lib := range st.MissingLibraries {
			fmt.Fprintf(a.Stderr, "warning: %s is not installed on this machine and is left out of shared_preload_libraries\n", lib)
		}
	}
	o := st.Outputs
	fmt.Fprintf(a.Stderr, "the master password is in the AWSCURRENT version of the secret %s, file %s (mode 0600);\n"+
		"`apgstack psql` connects without showing it, or read it with:\n"+
		"  jq -r '.Versions[] | select(.VersionStages | index(\"AWSCURRENT\")) | .SecretString | fromjson | .password' %s\n",
		o.SecretName, o.SecretFile, o.SecretFile)
	if asJSON {
		return a.PrintJSON(o)
	}
	printOutputs(a.Stdout, o)
	return nil
}

func printOutputs(w io.Writer, o api.Outputs) {
	for _, kv := range [][2]string{
		{"ClusterEndpoint", o.ClusterEndpoint}, {"ReaderEndpoint", o.ReaderEndpoint}, {"Port", o.Port}, {"ReaderPort", o.ReaderPort},
		{"DBUsername", o.DBUsername}, {"DBName", o.DBName}, {"PSQLCommandLine", o.PSQLCommandLine}, {"URL", o.URL},
		{"SecretName", o.SecretName}, {"SecretFile", o.SecretFile}, {"CABundle", o.CABundle},
	} {
		fmt.Fprintf(w, "%-16s %s\n", kv[0], kv[1])
	}
}

// newSuperviseCmd is the background supervisor `up` starts: configuration on stdin, progress and
// readiness on file descriptor 3, logs on stderr (the state directory's supervisor.log).
func newSuperviseCmd(a *App) *cobra.Command {
	var stateDir string
	var strict bool
	cmd := &cobra.Command{
		Use:    "supervise",
		Short:  "Run the local twin's supervisor (started by up)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if stateDir == "" {
				return Usagef("supervise: --state-dir is required")
			}
			cfg, err := twin.ReadConfig(a.Stdin)
			if err != nil {
				return Exit(ExitUsage, err)
			}
			var notify io.Writer
			if f := os.NewFile(3, "notify"); f != nil {
				var st syscall.Stat_t
				if syscall.Fstat(3, &st) == nil {
					syscall.CloseOnExec(3) // the servers this starts must not hold the pipe open
					notify = f
				}
			}
			return superviseRun(cmd.Context(), a, twin.Options{Config: cfg, StateDir: stateDir, Strict: strict, Log: a.Log, CrashAt: a.Getenv(twin.CrashAtEnv)}, notify)
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", "", "state directory (absolute)")
	cmd.Flags().BoolVar(&strict, "strict-version", false, "refuse another PostgreSQL major")
	return cmd
}

func superviseRun(ctx context.Context, a *App, o twin.Options, notify io.Writer) error {
	a.Log.Info("supervisor starting", "stateDir", o.StateDir, "pid", os.Getpid())
	err := twin.Supervise(ctx, o, notify, nil)
	a.Log.Info("supervisor stopped", "err", err)
	return err
}
