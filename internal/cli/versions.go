package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/apgstack/apgstack/internal/aws/deploy"
)

func newVersionsCmd(a *App) *cobra.Command {
	var live bool
	cmd := &cobra.Command{
		Use:   "versions [--live]",
		Short: "Aurora PostgreSQL versions with their support dates (--live: what the Region offers)",
		Long: `List the Aurora PostgreSQL versions apgstack knows, from AWS's release calendar, with each
major's end of standard support and of Extended Support, and where each stands today. With --live
(AWS credentials needed) the Region is asked too: which versions it offers, its default, the
valid upgrade targets of each, and whether database.instanceClass is orderable for the configured
version.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			inv, err := a.invoke(cmd)
			if err != nil {
				return err
			}
			var offer *deploy.Offer
			if live {
				d, _, err := awsDeployer(cmd.Context(), cmd, a, inv.cfg)
				if err != nil {
					return err
				}
				if offer, err = d.LiveVersions(cmd.Context(), inv.cfg.Database.EngineVersion); err != nil {
					return awsExit(err)
				}
			}
			rows := deploy.VersionRows(offer, time.Now())
			if inv.json {
				return a.PrintJSON(struct {
					Versions []deploy.Row  `json:"versions"`
					Offer    *deploy.Offer `json:"region,omitempty"`
				}{rows, offer})
			}
			tw := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprint(tw, "VERSION\tSTANDARD SUPPORT ENDS\tEXTENDED SUPPORT ENDS\tSUPPORT")
			if offer != nil {
				fmt.Fprint(tw, "\tREGION\tUPGRADE TARGETS")
			}
			fmt.Fprintln(tw)
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s", r.Version, dash(r.EndOfStandardSupport), dash(r.EndOfExtendedSupport), r.Support)
				if offer != nil {
					fmt.Fprintf(tw, "\t%s\t%s", r.Region, dash(strings.Join(r.Upgrades, ",")))
				}
				fmt.Fprintln(tw)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			printAdvice(a, inv.cfg)
			return nil
		},
	}
	cmd.Flags().BoolVar(&live, "live", false, "ask the Region (DescribeDBEngineVersions, DescribeOrderableDBInstanceOptions)")
	addAWSFlags(cmd)
	return cmd
}
