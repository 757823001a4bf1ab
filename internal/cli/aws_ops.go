package cli

import (
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/internal/aws/deploy"
)

// awsOpsExit maps the operations' own errors, then the deploy errors, to exit codes.
func awsOpsExit(err error) error {
	var fe *deploy.FailoverInterruptedError
	switch {
	case errors.As(err, &fe):
		return Exit(ExitInterrupted, err)
	case errors.Is(err, deploy.ErrBadInput):
		return Exit(ExitUsage, err)
	}
	return awsExit(err)
}

func awsFailover(cmd *cobra.Command, a *App, cfg apgstack.Config, target string) error {
	ctx := cmd.Context()
	d, asJSON, err := awsSession(cmd, a, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.Stderr, "failing over the cluster of stack %s ...\n", cfg.Database.StackName)
	res, err := d.Failover(ctx, cfg.Database.StackName, target)
	d.View.Close()
	if err != nil {
		return awsOpsExit(err)
	}
	if asJSON {
		return a.PrintJSON(res)
	}
	fmt.Fprintf(a.Stdout, "%s is the writer of cluster %s now (was %s); done in %s\n",
		res.NewWriter, res.Cluster, res.OldWriter, res.Duration.Round(time.Second))
	fmt.Fprintf(a.Stdout, "%s runs as a reader; the cluster endpoint follows the writer, so clients reconnect to it\n", res.OldWriter)
	return nil
}

func awsRotate(cmd *cobra.Command, a *App, cfg apgstack.Config, role string) error {
	ctx := cmd.Context()
	d, asJSON, err := awsSession(cmd, a, cfg)
	if err != nil {
		return err
	}
	res, err := d.RotateSecret(ctx, cfg.Database.StackName, role)
	d.View.Close()
	if err != nil && len(res) == 0 {
		return awsOpsExit(err)
	}
	if asJSON {
		if perr := a.PrintJSON(res); perr != nil {
			return perr
		}
	} else {
		tw := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ROLE\tSECRET\tROTATION VERSION")
		for _, r := range res {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Role, r.SecretArn, r.VersionID)
		}
		tw.Flush()
		fmt.Fprintln(a.Stdout, "Secrets Manager rotates them now, through the stack's rotation functions; watch with:")
		for _, r := range res {
			fmt.Fprintf(a.Stdout, "  %s\n", r.Watch)
		}
	}
	return awsOpsExit(err)
}
