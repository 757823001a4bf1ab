package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/awsdeploy"
	"github.com/apgstack/apgstack/lambdazip"
	"github.com/apgstack/apgstack/progress"
	"github.com/apgstack/apgstack/stacks"
	"github.com/spf13/cobra"
)

// The AWS target of up, down and status: the hooks that up.go, down.go and status.go declare.
func init() {
	runAWSUp = awsUp
	runAWSDown = awsDown
	runAWSStatus = awsStatus
}

// awsPoll is how often stacks are polled (tests make it short).
var awsPoll, awsChangeSetPoll = 5 * time.Second, 2 * time.Second

// AddAWSFlags adds the flags of the AWS target to a command: --profile and --region everywhere,
// --dry-run on up, --disable-deletion-protection on down. The hooks read them when present.
func AddAWSFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	if f.Lookup("profile") == nil {
		f.String("profile", "", "target aws: the AWS profile (overrides target.aws.profile and AWS_PROFILE)")
	}
	if f.Lookup("region") == nil {
		f.String("region", "", "target aws: the AWS Region (overrides target.aws.region and AWS_REGION)")
	}
	switch cmd.Name() {
	case "up":
		if f.Lookup("dry-run") == nil {
			f.Bool("dry-run", false, "target aws: show the change sets, then remove them without executing")
		}
	case "down":
		if f.Lookup("disable-deletion-protection") == nil {
			f.Bool("disable-deletion-protection", false, "target aws: lift the cluster's deletion protection before deleting")
		}
	}
}

func flagString(cmd *cobra.Command, name string) string {
	if f := cmd.Flags().Lookup(name); f != nil {
		return f.Value.String()
	}
	return ""
}

func flagBool(cmd *cobra.Command, name string) bool {
	return flagString(cmd, name) == "true"
}

// awsDeployer checks Region and credentials (the standard chain with profile and Region from
// flags, then the configuration) and asks STS who we are, before anything else.
func awsDeployer(ctx context.Context, cmd *cobra.Command, a *App, cfg apgstack.Config) (*awsdeploy.Deployer, awsdeploy.Identity, error) {
	o := awsdeploy.Options{Region: cfg.Target.AWS.Region, Profile: cfg.Target.AWS.Profile}
	if v := flagString(cmd, "region"); v != "" {
		o.Region = v
	}
	if v := flagString(cmd, "profile"); v != "" {
		o.Profile = v
	}
	awsCfg, err := awsdeploy.Load(ctx, o)
	if err != nil {
		return nil, awsdeploy.Identity{}, awsExit(err)
	}
	d := awsdeploy.New(awsCfg)
	d.Poll, d.ChangeSetPoll = awsPoll, awsChangeSetPoll
	d.View = progress.New(a.Stderr, progress.Options{Live: a.StderrIsTerminal(), Color: a.Color()})
	d.Out = a.Stderr
	d.Confirm = a.Confirm
	id, err := d.Identity(ctx)
	if err != nil {
		return nil, id, awsExit(err)
	}
	fmt.Fprintf(a.Stderr, "AWS account %s in %s as %s\n", id.Account, d.Region, id.Arn)
	return d, id, nil
}

// awsExit maps deploy errors to exit codes.
func awsExit(err error) error {
	var ee *ExitError
	var auth *awsdeploy.AuthError
	var se *awsdeploy.StackError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee):
		return err
	case errors.As(err, &auth):
		return Exit(ExitAuth, err)
	case errors.Is(err, awsdeploy.ErrNoRegion):
		return Exit(ExitUsage, err)
	case awsdeploy.IsInterrupted(err):
		return Exit(ExitInterrupted, err)
	case errors.Is(err, context.Canceled):
		return Exit(ExitInterrupted, fmt.Errorf("%w; nothing was cancelled on AWS: `apgstack status --target aws` shows where the stacks are, and running the command again carries on", err))
	case errors.As(err, &se) && se.RolledBack:
		return Exit(ExitRolledBack, err)
	case awsdeploy.IsAuthError(err):
		return Exit(ExitAuth, err)
	}
	return Exit(ExitFailure, err)
}

// stackRefs names the three stacks, in deployment order.
func stackRefs(cfg apgstack.Config) []awsdeploy.StackRef {
	return []awsdeploy.StackRef{
		{Kind: stacks.Network, Name: cfg.Network.StackName},
		{Kind: stacks.Bastion, Name: cfg.Bastion.StackName},
		{Kind: stacks.Database, Name: cfg.Database.StackName},
	}
}

// bootstrapPackager builds the bootstrap Lambda from this checkout when the stack needs it.
var bootstrapPackager awsdeploy.Packager = awsdeploy.PackagerFunc(func(ctx context.Context) ([]byte, string, error) {
	dir, err := os.MkdirTemp("", "apgstack-lambda-*")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(dir)
	res, err := lambdazip.Build(ctx, "", dir)
	if err != nil {
		return nil, "", err
	}
	b, err := os.ReadFile(res.Path)
	return b, res.Key, err
})

func awsUp(cmd *cobra.Command, a *App, cfg apgstack.Config) error {
	asJSON, err := a.JSON()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	list, err := stacks.All(cfg)
	if err != nil {
		return Exit(ExitFailure, err)
	}
	if len(list) == 0 {
		return Exit(ExitFailure, errors.New("no stack builders are available in this build"))
	}
	d, _, err := awsDeployer(ctx, cmd, a, cfg)
	if err != nil {
		return err
	}
	dry := flagBool(cmd, "dry-run")
	if dry && !asJSON {
		d.Out = a.Stdout // the change sets are what a dry run produces (in the JSON too)
	}
	for _, w := range d.Preflight(ctx) {
		fmt.Fprintf(a.Stderr, "warning: %s\n", w)
	}
	// The zip is built only when the database stack bootstraps and its key is not in S3 yet.
	var pk awsdeploy.Packager
	if cfg.Database.BootstrapS3Bucket != "" && cfg.Database.SnapshotName == "" {
		pk = awsdeploy.PackagerFunc(func(ctx context.Context) ([]byte, string, error) {
			fmt.Fprintln(a.Stderr, "building the bootstrap Lambda for linux/arm64 ...")
			return bootstrapPackager.Package(ctx)
		})
	}
	res, err := d.Up(ctx, list, awsdeploy.UpOptions{DryRun: dry, Bootstrap: pk})
	d.View.Close()
	if err != nil {
		return awsExit(err)
	}
	if asJSON {
		return a.PrintJSON(res)
	}
	if dry {
		return nil
	}
	printSummary(a, res.Summary)
	return nil
}

func printSummary(a *App, s awsdeploy.Summary) {
	tw := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
	for _, kv := range s.Lines() {
		fmt.Fprintf(tw, "%s\t%s\n", kv[0], kv[1])
	}
	tw.Flush()
}

func awsDown(cmd *cobra.Command, a *App, cfg apgstack.Config) error {
	asJSON, err := a.JSON()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	d, _, err := awsDeployer(ctx, cmd, a, cfg)
	if err != nil {
		return err
	}
	refs := stackRefs(cfg)
	for i, j := 0, len(refs)-1; i < j; i, j = i+1, j-1 { // database, bastion, network
		refs[i], refs[j] = refs[j], refs[i]
	}
	res, err := d.Down(ctx, refs, awsdeploy.DownOptions{DisableDeletionProtection: flagBool(cmd, "disable-deletion-protection")})
	d.View.Close()
	if err != nil {
		return awsExit(err)
	}
	if asJSON {
		return a.PrintJSON(res)
	}
	if len(res.Deleted) > 0 {
		fmt.Fprintf(a.Stdout, "deleted %s\n", strings.Join(res.Deleted, ", "))
	}
	if res.FinalSnapshot != "" {
		fmt.Fprintf(a.Stdout, "final snapshot kept: %s\n", res.FinalSnapshot)
	}
	return nil
}

func awsStatus(cmd *cobra.Command, a *App, cfg apgstack.Config) error {
	asJSON, err := a.JSON()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	d, _, err := awsDeployer(ctx, cmd, a, cfg)
	if err != nil {
		return err
	}
	st, err := d.Status(ctx, stackRefs(cfg))
	if err != nil {
		return awsExit(err)
	}
	if asJSON {
		return a.PrintJSON(st)
	}
	tw := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tSTACK\tSTATUS\tUPDATED")
	for _, s := range st {
		updated := "-"
		if !s.Updated.IsZero() {
			updated = s.Updated.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Kind, s.Name, s.Status, updated)
	}
	tw.Flush()
	for _, s := range st {
		if s.Reason != "" {
			fmt.Fprintf(a.Stdout, "%s: %s\n", s.Name, s.Reason)
		}
		if s.Hint != "" {
			fmt.Fprintf(a.Stdout, "%s: %s\n", s.Name, s.Hint)
		}
	}
	return nil
}
