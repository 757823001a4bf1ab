package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/apgstack/apgstack"
)

func newInitCmd(a *App) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write an annotated apgstack.yaml with every parameter of the three stacks",
		Long: `Write an annotated apgstack.yaml (or the file named by --config) holding every parameter of the
network, bastion and database stacks with the original templates' defaults, and the target
(local by default). Values given with --set are written into the file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := apgstack.Default()
			if a.Target != "" {
				if err := cfg.Set("target.kind", a.Target); err != nil {
					return Exit(ExitUsage, err)
				}
			}
			for _, s := range a.Sets {
				path, value, ok := cutSet(s)
				if !ok {
					return Usagef("--set %q: want path=value, e.g. database.port=5433", s)
				}
				if err := cfg.Set(path, value); err != nil {
					return Exit(ExitUsage, err)
				}
			}
			if err := cfg.Validate(); err != nil {
				return Exit(ExitUsage, err)
			}
			if _, err := os.Stat(a.ConfigPath); err == nil && !force {
				return Usagef("%s exists; pass --force to overwrite it", a.ConfigPath)
			} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("check %s: %w", a.ConfigPath, err)
			}
			out, err := apgstack.InitYAML(cfg)
			if err != nil {
				return err
			}
			if err := os.WriteFile(a.ConfigPath, out, 0o644); err != nil {
				return fmt.Errorf("write %s: %w", a.ConfigPath, err)
			}
			fmt.Fprintln(a.Stdout, a.ConfigPath)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing file")
	return cmd
}
