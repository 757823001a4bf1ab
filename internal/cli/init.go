package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/internal/atomicfile"
	"github.com/apgstack/apgstack/internal/twin"
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
			if cfg.Target.Kind != apgstack.TargetAWS {
				note, err := twin.RunsOn(cmd.Context(), cfg)
				if err != nil {
					return err
				}
				out = noteEngine(out, note)
			}
			if err := os.WriteFile(a.ConfigPath, out, 0o644); err != nil {
				return fmt.Errorf("write %s: %w", a.ConfigPath, err)
			}
			fmt.Fprintln(a.Stdout, a.ConfigPath)
			added, err := ignoreState(filepath.Dir(a.ConfigPath))
			if err != nil {
				return err
			}
			if added {
				fmt.Fprintf(a.Stderr, "added %s to %s: the state directories and snapshots hold data and secrets\n",
					gitignorePattern, filepath.Join(filepath.Dir(a.ConfigPath), ".gitignore"))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing file")
	return cmd
}

// noteEngine puts a comment line under database.engineVersion: which installed PostgreSQL major
// the local twin runs on, so a reader of the file knows before up says so.
func noteEngine(out []byte, note string) []byte {
	lines := strings.SplitAfter(string(out), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "  engineVersion:") {
			lines = slices.Insert(lines, i+1, "  # "+note+"\n")
			break
		}
	}
	return []byte(strings.Join(lines, ""))
}

// gitignorePattern covers the state directory (.apgstack), restored twins' directories
// (.apgstack-NAME) and the snapshots (.apgstack-snapshots): data and secrets, never for git.
const gitignorePattern = "/.apgstack*"

// ignoreState makes the .gitignore of dir name gitignorePattern, creating the file when needed.
// It reports whether it changed anything.
func ignoreState(dir string) (bool, error) {
	path := filepath.Join(dir, ".gitignore")
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if l := strings.TrimSpace(line); l == gitignorePattern || l == ".apgstack*" {
			return false, nil
		}
	}
	if len(data) > 0 && !strings.HasSuffix(string(data), "\n") {
		data = append(data, '\n')
	}
	data = append(data, []byte("# apgstack: local twins' state and snapshots (data and secrets)\n"+gitignorePattern+"\n")...)
	if err := atomicfile.Write(path, data, atomicfile.Mode(0o644)); err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	return true, nil
}
