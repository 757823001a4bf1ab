package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/apgstack/apgstack"
)

// Target is where the stacks are realized: the local twin or AWS. Commands that work on both
// (up, down, status, outputs, psql, failover, rotate-secret) pick it once, from the
// configuration (target.kind, --target), through App.target, and call one method; each
// implementation prints its own results.
type Target interface {
	Up(ctx context.Context, o UpOptions) error
	Down(ctx context.Context, o DownOptions) error
	Status(ctx context.Context) error
	Outputs(ctx context.Context) error
	// PSQL opens psql on the writer endpoint, or the reader endpoint, with args after --.
	PSQL(ctx context.Context, reader bool, args []string) error
	// Failover switches the writer over to instance ("" for the best reader).
	Failover(ctx context.Context, instance string) error
	// RotateSecret rotates role's secret (master, owner, rw, ro or all) now.
	RotateSecret(ctx context.Context, role string) error
}

// UpOptions are up's flags of the local target (the AWS target reads its own: --dry-run).
type UpOptions struct {
	Strict, Foreground bool
	// DryRun prints the plan of an update and changes nothing.
	DryRun bool
}

// DownOptions are down's flags of the local target (the AWS target reads its own:
// --disable-deletion-protection).
type DownOptions struct {
	Delete, SkipFinalSnapshot bool
}

// invocation is what a target needs of the command that runs it.
type invocation struct {
	a    *App
	cmd  *cobra.Command
	cfg  apgstack.Config
	json bool
}

// printAdvice prints what the configuration should know today: an engine version near or past
// its end of standard support (the calendar in bestpractice decides).
func printAdvice(a *App, cfg apgstack.Config) {
	for _, w := range cfg.Warnings(time.Now()) {
		fmt.Fprintln(a.Stderr, "warning:", w)
	}
}

// invoke is the preamble of every command that reads the configuration and prints results:
// configuration loaded and validated, --output checked.
func (a *App) invoke(cmd *cobra.Command) (invocation, error) {
	cfg, err := a.Config(cmd)
	if err != nil {
		return invocation{}, err
	}
	asJSON, err := a.JSON()
	if err != nil {
		return invocation{}, err
	}
	return invocation{a: a, cmd: cmd, cfg: cfg, json: asJSON}, nil
}

// target is the preamble of the commands that work on both targets: it picks the target.
func (a *App) target(cmd *cobra.Command, lf localFlags) (Target, error) {
	inv, err := a.invoke(cmd)
	if err != nil {
		return nil, err
	}
	if inv.cfg.Target.Kind == apgstack.TargetAWS {
		return awsTarget{inv}, nil
	}
	return newLocalTarget(inv, lf)
}

// localTwin is the preamble of the commands only the local twin has (backup, snapshot, restore,
// metrics): target aws is refused with what to use there, and the state directory must hold a
// twin, whose recorded configuration the command then uses.
func (a *App) localTwin(cmd *cobra.Command, lf localFlags, what string) (*localTarget, error) {
	t, err := a.localDir(cmd, lf, what)
	if err != nil {
		return nil, err
	}
	return t, t.existing()
}

// localDir is localTwin for the commands that work beside a state directory with or without a
// twin in it (the snapshots outlive their twin).
func (a *App) localDir(cmd *cobra.Command, lf localFlags, what string) (*localTarget, error) {
	inv, err := a.invoke(cmd)
	if err != nil {
		return nil, err
	}
	if inv.cfg.Target.Kind == apgstack.TargetAWS {
		return nil, Usagef("target aws: %s is the local twin's; on AWS, Aurora backs up continuously and the RDS console or CLI restores and snapshots", what)
	}
	return newLocalTarget(inv, lf)
}

// awsTarget realizes the stacks on AWS (aws.go, aws_ops.go).
type awsTarget struct{ invocation }

func (t awsTarget) Up(context.Context, UpOptions) error {
	printAdvice(t.a, t.cfg)
	return awsUp(t.cmd, t.a, t.cfg)
}
func (t awsTarget) Down(context.Context, DownOptions) error { return awsDown(t.cmd, t.a, t.cfg) }
func (t awsTarget) Status(context.Context) error            { return awsStatus(t.cmd, t.a, t.cfg) }
func (t awsTarget) Outputs(context.Context) error           { return awsOutputsCmd(t.cmd, t.a, t.cfg, t.json) }
func (t awsTarget) PSQL(_ context.Context, reader bool, args []string) error {
	return awsPSQL(t.cmd, t.a, t.cfg, reader, args)
}
func (t awsTarget) Failover(_ context.Context, instance string) error {
	return awsFailover(t.cmd, t.a, t.cfg, instance)
}
func (t awsTarget) RotateSecret(_ context.Context, role string) error {
	return awsRotate(t.cmd, t.a, t.cfg, role)
}
