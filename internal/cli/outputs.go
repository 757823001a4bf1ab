package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/internal/aws/deploy"
)

// awsOutputs is what `outputs --output json` prints on target aws.
type awsOutputs struct {
	Stacks  []deploy.StackStatus `json:"stacks"`
	Summary deploy.Summary       `json:"summary"`
}

func newOutputsCmd(a *App) *cobra.Command {
	var lf localFlags
	cmd := &cobra.Command{
		Use:   "outputs",
		Short: "Print the stacks' outputs (aws: every output of the three stacks; local: the twin's)",
		Long: `Print the outputs of the stacks: on target aws every output of the network, bastion and
database stacks with its export name, then the lines a person needs (SSHCommand, PSQLCommandLine,
ClusterEndpoint, ReaderEndpoint, the master secret's ARN and the command that reads it); on the
local target the twin's outputs. --output json prints the same as JSON.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := a.target(cmd, lf)
			if err != nil {
				return err
			}
			return t.Outputs(cmd.Context())
		},
	}
	lf.add(cmd)
	addAWSFlags(cmd)
	return cmd
}

// awsOutputsCmd prints every output of the three stacks, then the lines a person needs.
func awsOutputsCmd(cmd *cobra.Command, a *App, cfg apgstack.Config, asJSON bool) error {
	ctx := cmd.Context()
	d, _, err := awsDeployer(ctx, cmd, a, cfg)
	if err != nil {
		return err
	}
	st, err := d.Status(ctx, stackRefs(cfg))
	if err != nil {
		return awsExit(err)
	}
	out := awsOutputs{Stacks: st, Summary: deploy.Summarize(st, d.Region)}
	if asJSON {
		return a.PrintJSON(out)
	}
	tw := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
	for _, s := range st {
		fmt.Fprintf(tw, "# %s (%s): %s\n", s.Name, s.Kind, s.Status)
		for _, o := range s.Outputs {
			export := ""
			if o.Export != "" {
				export = "export " + o.Export
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", o.Key, o.Value, export)
		}
	}
	tw.Flush()
	if lines := out.Summary.Lines(); len(lines) > 0 {
		fmt.Fprintln(a.Stdout, "#")
		printSummary(a, out.Summary)
	}
	return nil
}
