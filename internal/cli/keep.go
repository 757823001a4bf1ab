package cli

import (
	"io"
	"os"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/apgstack/apgstack/internal/twin"
)

// newKeepCmd is the keeper `up` starts: it runs `apgstack supervise` and starts it again when it
// dies without being told to stop. Configuration on stdin, the first supervisor's progress and
// readiness on file descriptor 3, logs on stderr (the state directory's supervisor.log).
func newKeepCmd(a *App) *cobra.Command {
	var stateDir string
	var strict bool
	cmd := &cobra.Command{
		Use:    "keep",
		Short:  "Run the local twin's supervisor and restart it when it dies (started by up)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if stateDir == "" {
				return Usagef("keep: --state-dir is required")
			}
			cfg, err := io.ReadAll(a.Stdin)
			if err != nil {
				return err
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			var notify io.Writer
			var st syscall.Stat_t
			if syscall.Fstat(3, &st) == nil {
				syscall.CloseOnExec(3) // up's pipe is not for the supervisors this starts
				notify = os.NewFile(3, "notify")
			}
			var args []string
			if strict {
				args = append(args, "--strict-version")
			}
			if a.Verbose {
				args = append(args, "--verbose")
			}
			a.Log.Info("keeper starting", "stateDir", stateDir, "pid", os.Getpid())
			return twin.Keep(cmd.Context(), twin.KeepOptions{Exe: exe, StateDir: stateDir, Args: args, Config: cfg, Notify: notify, Log: a.Log})
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", "", "state directory (absolute)")
	cmd.Flags().BoolVar(&strict, "strict-version", false, "refuse another PostgreSQL major")
	return cmd
}
