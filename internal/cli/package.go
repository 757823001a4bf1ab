package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/apgstack/apgstack/internal/aws/lambdazip"
)

func newPackageCmd(a *App) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "package",
		Short: "Build the bootstrap Lambda's zip reproducibly and print its S3 key",
		Long: `Build cmd/bootstrap-lambda for provided.al2023 on arm64 and write it as a zip holding one
executable named bootstrap. The build is reproducible (same source and Go toolchain, same bytes)
and the file is named after its SHA-256: bootstrap-lambda-<12 hex digits>.zip. The S3 key it is to
be uploaded under (database.bootstrapS3Key, the stack's LambdaBootStrapS3Key) is printed on stdout.

Run it inside a checkout of apgstack: the Lambda is compiled from source with the go command.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := a.JSON()
			if err != nil {
				return err
			}
			if dir == "" {
				return Usagef("--dir is empty: name the directory to write the zip into")
			}
			fmt.Fprintln(a.Stderr, "building the bootstrap Lambda for linux/arm64 ...")
			res, err := lambdazip.Build(cmd.Context(), "", dir)
			if err != nil {
				return err
			}
			if asJSON {
				return a.PrintJSON(res)
			}
			fmt.Fprintf(a.Stderr, "wrote %s (sha256 %s)\n", res.Path, res.SHA256)
			fmt.Fprintln(a.Stdout, res.Key)
			return nil
		},
	}
	// -o is taken by the global --output.
	cmd.Flags().StringVarP(&dir, "dir", "d", ".", "directory to write the zip into")
	return cmd
}
