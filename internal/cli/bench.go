package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/internal/aws/stacks"
	"github.com/apgstack/apgstack/internal/twin/bench"
)

func newBenchCmd(a *App) *cobra.Command {
	var (
		quick    bool
		satPhase time.Duration
		runs     int
		out      string
		only     []string
		workDir  string
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure how fast and how safe the local twin is, and write BENCHMARKS.md",
		Long: `Measure the local twin on this machine and print a table of the figures against their
targets (met or missed, never asserted), then write them with the machine's description to
BENCHMARKS.md:

  synth         time to write the three templates and their parameter files
  ready         up to the first TLS query (verify-full, writer endpoint), dev and prod, against
                the bare floor: initdb + pg_ctl start (+ pg_basebackup and a reader for prod)
  endpoint      pgbench TPS and latency through the writer and reader endpoints against a
                direct connection to the same server, select-only and TPC-B-like, over TLS
  switchover    write unavailability, errors and acknowledged writes lost in a planned switchover
  failover      SIGKILL (and SIGSTOP) of the writer to the first acknowledged write through the
                writer endpoint, and acknowledged writes lost (prod, synchronous replication)
  saturation    failovers the supervisor performs (target 0) while a connection flood beyond
                max_connections, pgbench at full CPU, a checkpoint storm and a large VACUUM load
                the prod writer in turn, --saturation-phase each
  bestpractice  pgbench TPS with the best-practice parameter groups against PostgreSQL's defaults

The two sides of every comparison run interleaved (A B A B) and ratios are given with their
spread. Servers run as the unprivileged server account on ports chosen at run time, in state
directories under --work-dir, all removed at the end (also on Ctrl-C). A full run takes several
minutes; --quick finishes in under two.`,
		Example: `  apgstack bench --quick
  apgstack bench --runs 10 --out BENCHMARKS.md
  apgstack bench --only failover,switchover --out ''`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for i := range only {
				only[i] = strings.TrimSpace(only[i])
			}
			if err := bench.CheckOnly(only); err != nil {
				return Exit(ExitUsage, err)
			}
			if runs < 0 {
				return Usagef("--runs %d: must be 1 or more (0 for the default)", runs)
			}
			asJSON, err := a.JSON()
			if err != nil {
				return err
			}
			cfg, err := a.Config(cmd)
			if err != nil {
				return err
			}
			if fi, err := os.Stat(workDir); err != nil || !fi.IsDir() {
				return Usagef("--work-dir %q: not a directory", workDir)
			}
			// The servers' and supervisors' own logs only with --verbose: the progress lines say
			// what is going on.
			log := slog.New(slog.DiscardHandler)
			if a.Verbose {
				log = a.Log
			}
			rep, runErr := bench.Run(cmd.Context(), bench.Options{
				Config: cfg, Quick: quick, Runs: runs, Only: only, WorkDir: workDir, SaturationPhase: satPhase,
				Progress: a.Stderr, Log: log,
				Synth: func(cfg apgstack.Config, dir string) error {
					_, _, err := Synth(cfg, dir, "yaml", stacks.Available())
					return err
				},
			})
			if rep != nil {
				if asJSON {
					if err := a.PrintJSON(rep); err != nil {
						return err
					}
				} else if err := rep.WriteTable(a.Stdout); err != nil {
					return err
				}
			}
			if runErr != nil {
				if errors.Is(runErr, cmd.Context().Err()) && cmd.Context().Err() != nil {
					return Exit(ExitInterrupted, fmt.Errorf("bench interrupted; %s not written: %w", out, runErr))
				}
				return runErr
			}
			if out == "" {
				return nil
			}
			if dir := filepath.Dir(out); dir != "." {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return fmt.Errorf("bench: %w", err)
				}
			}
			if err := writeFileAtomic(out, []byte(rep.Markdown())); err != nil {
				return err
			}
			for file, svg := range rep.Charts() { // the bench draws its own charts, next to the report
				chart := filepath.Join(filepath.Dir(out), file)
				if err := os.MkdirAll(filepath.Dir(chart), 0o755); err != nil {
					return fmt.Errorf("bench: %w", err)
				}
				if err := writeFileAtomic(chart, []byte(svg)); err != nil {
					return err
				}
			}
			fmt.Fprintf(a.Stderr, "bench: wrote %s\n", out)
			return nil
		},
	}
	f := cmd.Flags()
	f.DurationVar(&satPhase, "saturation-phase", 0, "how long each load of the saturation scenario lasts (default 45s, 8s with --quick)")
	f.BoolVar(&quick, "quick", false, "fewer, shorter runs (under two minutes)")
	f.IntVar(&runs, "runs", 0, "runs of every scenario (default 5 for time to ready, 10 for failover; --quick fewer)")
	f.StringVar(&out, "out", "BENCHMARKS.md", "file to write the report to ('' writes none)")
	f.StringSliceVar(&only, "only", nil, "run only these scenarios: "+strings.Join(bench.Scenarios, ", "))
	f.StringVar(&workDir, "work-dir", "/var/tmp", "where the state directories are created (the server account must reach it)")
	_ = cmd.RegisterFlagCompletionFunc("only", cobra.FixedCompletions(bench.Scenarios, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}
