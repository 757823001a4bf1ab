// Package cli is the apgstack command line: cobra commands over the feature packages, one file a
// command, all listed once in NewRootCmd. The commands that work on both realizations go through
// a Target (local twin or AWS), chosen once from the configuration.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/internal/twin/statedir"
)

// Exit codes, as DESIGN.md "Command line" fixes them.
const (
	ExitOK          = 0
	ExitFailure     = 1
	ExitUsage       = 2 // bad usage or bad input
	ExitCancelled   = 3
	ExitAuth        = 4
	ExitRolledBack  = 5
	ExitInterrupted = 130
)

// ExitError carries an exit code with the error a command failed with.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Exit wraps err with an exit code.
func Exit(code int, err error) error {
	if err == nil {
		return nil
	}
	return &ExitError{Code: code, Err: err}
}

// Usagef is a bad-input error (exit 2).
func Usagef(format string, args ...any) error {
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf(format, args...)}
}

// App is what every command shares: streams, environment, global flags.
type App struct {
	Stdin   io.Reader
	Stdout  io.Writer // data
	Stderr  io.Writer // progress and logs
	Environ []string

	ConfigPath string
	Output     string // text or json
	Yes        bool
	Target     string
	Sets       []string // --set path=value
	Verbose    bool

	Log *slog.Logger

	// AWS holds the AWS target's settings that tests change.
	AWS AWSKnobs
}

// NewRootCmd builds the command tree.
func NewRootCmd(a *App) *cobra.Command {
	root := &cobra.Command{
		Use:   "apgstack",
		Short: "Amazon Aurora PostgreSQL built to AWS best practice, on AWS or as a local twin",
		Long: `apgstack gives a team an Amazon Aurora PostgreSQL environment built to AWS best practice
from one configuration file (apgstack.yaml): three CloudFormation stacks on AWS, or a local
twin of the same cluster design on real PostgreSQL (the default target).

Precedence: flags override APGSTACK_* environment variables, which override the file.`,
		Version:       readVersion().short(),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			level := slog.LevelInfo
			if a.Verbose {
				level = slog.LevelDebug
			}
			a.Log = slog.New(slog.NewTextHandler(a.Stderr, &slog.HandlerOptions{Level: level}))
		},
	}
	root.Flags().Bool("version", false, "print the version on one line (see also: apgstack version)")
	root.SetIn(a.Stdin)
	root.SetOut(a.Stdout)
	root.SetErr(a.Stderr)
	pf := root.PersistentFlags()
	pf.StringVarP(&a.ConfigPath, "config", "c", a.envOr("APGSTACK_CONFIG", apgstack.DefaultConfigFile), "configuration file")
	pf.StringVarP(&a.Output, "output", "o", a.envOr("APGSTACK_OUTPUT", "text"), "output format of read commands: "+strings.Join(outputFormats, " or "))
	pf.BoolVarP(&a.Yes, "yes", "y", false, "answer yes to every confirmation")
	pf.StringVar(&a.Target, "target", "", "where the stacks are realized: local or aws (overrides target.kind)")
	pf.StringArrayVar(&a.Sets, "set", nil, "override a configuration field, e.g. --set database.port=5433 (repeatable)")
	pf.BoolVarP(&a.Verbose, "verbose", "v", false, "debug logging on stderr")
	// Every command, in one explicit list, in the order `apgstack --help` shows them.
	for _, fn := range []func(*App) *cobra.Command{
		newInitCmd, newSynthCmd, newValidateCmd, newPolicyCmd, newExplainCmd, newPackageCmd,
		newUpCmd, newDownCmd, newStatusCmd, newOutputsCmd, newPSQLCmd, newFailoverCmd, newRotateCmd,
		newBackupCmd, newRestoreCmd, newSnapshotCmd, newEventsCmd, newMetricsCmd, newTopCmd, newRebootCmd, newEnvCmd, newLogsCmd,
		newVersionsCmd, newUpgradeCmd, newBootstrapCmd, newBenchCmd, newSuperviseCmd, newKeepCmd, newVersionCmd,
		newChaosCmd,
	} {
		root.AddCommand(fn(a))
	}
	a.registerGlobalCompletions(root)
	return root
}

func (a *App) envOr(name, def string) string {
	for _, kv := range a.Environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name && v != "" {
			return v
		}
	}
	return def
}

// Getenv reads a variable from the App's environment (not the process's, so tests can set it).
func (a *App) Getenv(name string) string { return a.envOr(name, "") }

// Config loads and validates the configuration: file, environment, then --target and --set.
// Invalid input is an exit-2 error listing every bad field.
func (a *App) Config(cmd *cobra.Command) (apgstack.Config, error) {
	explicit := cmd != nil && cmd.Flags().Changed("config") || a.Getenv("APGSTACK_CONFIG") != ""
	cfg, err := apgstack.Load(a.ConfigPath, explicit, a.Environ)
	if err != nil {
		return cfg, Exit(ExitUsage, err)
	}
	if a.Target != "" {
		if err := cfg.Set("target.kind", a.Target); err != nil {
			return cfg, Exit(ExitUsage, err)
		}
	}
	for _, s := range a.Sets {
		path, value, ok := cutSet(s)
		if !ok {
			return cfg, Usagef("--set %q: want path=value, e.g. database.port=5433", s)
		}
		if err := cfg.Set(path, value); err != nil {
			return cfg, Exit(ExitUsage, err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, Exit(ExitUsage, err)
	}
	return cfg, nil
}

// outputFormats are the values of --output (-o).
var outputFormats = []string{"text", "json"}

// JSON reports whether read commands should print JSON; anything but text or json is bad usage.
func (a *App) JSON() (bool, error) {
	switch a.Output {
	case "json":
		return true, nil
	case "text", "":
		return false, nil
	}
	return false, Usagef("--output %q: allowed values are %s", a.Output, strings.Join(outputFormats, " and "))
}

// PrintJSON writes v as indented JSON to stdout.
func (a *App) PrintJSON(v any) error {
	enc := json.NewEncoder(a.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// StderrIsTerminal reports whether progress may be drawn live.
func (a *App) StderrIsTerminal() bool {
	f, ok := a.Stderr.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Color reports whether colour may be used (a terminal, and NO_COLOR unset).
func (a *App) Color() bool { return a.StderrIsTerminal() && a.Getenv("NO_COLOR") == "" }

// Confirm asks a yes/no question on the terminal. With --yes it answers yes; without a terminal
// it refuses instead of hanging.
func (a *App) Confirm(question string) error {
	if a.Yes {
		return nil
	}
	in, ok := a.Stdin.(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return Exit(ExitCancelled, fmt.Errorf("%s: confirmation needed but standard input is not a terminal; pass --yes to proceed", question))
	}
	fmt.Fprintf(a.Stderr, "%s [y/N] ", question)
	var answer string
	_, _ = fmt.Fscanln(in, &answer)
	if a := strings.ToLower(strings.TrimSpace(answer)); a == "y" || a == "yes" {
		return nil
	}
	return Exit(ExitCancelled, errors.New("cancelled"))
}

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, environ []string) int {
	a := &App{Stdin: stdin, Stdout: stdout, Stderr: stderr, Environ: environ}
	root := NewRootCmd(a)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintln(stderr, "apgstack:", userMessage(err))
	var ee *ExitError
	switch {
	case errors.As(err, &ee):
		return ee.Code
	case errors.Is(err, context.Canceled):
		return ExitInterrupted
	case errors.Is(err, statedir.ErrRefused):
		return ExitUsage
	case isUsageError(err):
		return ExitUsage
	}
	return ExitFailure
}

// isUsageError recognizes cobra's own argument and flag errors.
func isUsageError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "accepts ", "requires at least", "invalid argument", "flag needs an argument", "required flag"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// cutSet splits a --set argument into path and value.
func cutSet(s string) (path, value string, ok bool) { return strings.Cut(s, "=") }

// userMessage is an error as a user reads it: an interrupt is "interrupted", not Go's "context
// canceled".
func userMessage(err error) string {
	msg := err.Error()
	if errors.Is(err, context.Canceled) {
		if msg == context.Canceled.Error() {
			return "interrupted"
		}
		msg = strings.ReplaceAll(msg, context.Canceled.Error(), "interrupted")
	}
	return msg
}
