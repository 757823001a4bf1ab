package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/cft"
	"github.com/apgstack/apgstack/internal/atomicfile"
	"github.com/apgstack/apgstack/internal/aws/stacks"
)

// DefaultSynthDir is where synth writes when --out-dir is not given.
const DefaultSynthDir = "synth.out"

func newSynthCmd(a *App) *cobra.Command {
	var (
		dir    string
		format string
		kinds  []string
	)
	cmd := &cobra.Command{
		Use:   "synth",
		Short: "Write the CloudFormation templates and their parameter files",
		Long: `Write each stack's CloudFormation template (<stack>.yaml, or <stack>.json with --format json)
into the output directory and, beside it, <stack>.parameters.json: the parameter values from
the configuration, in the form the AWS CLI reads:

  aws cloudformation create-stack --stack-name apgstack-network \
    --template-body file://synth.out/network.yaml \
    --parameters file://synth.out/network.parameters.json \
    --capabilities CAPABILITY_IAM

The same configuration always gives the same bytes. The written paths are printed on stdout
(-o json: as one JSON document).`,
		Example: `  apgstack synth
  apgstack synth -d out --stack network
  apgstack synth --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "yaml" && format != "json" {
				return Usagef("--format %q: allowed values are yaml and json", format)
			}
			selected, err := selectStacks(kinds)
			if err != nil {
				return err
			}
			if dir == "" {
				return Usagef("--out-dir: a directory is required")
			}
			asJSON, err := a.JSON()
			if err != nil {
				return err
			}
			cfg, err := a.Config(cmd)
			if err != nil {
				return err
			}
			written, files, err := Synth(cfg, dir, format, selected)
			if asJSON {
				if written == nil {
					written = []string{}
				}
				if perr := a.PrintJSON(written); perr != nil && err == nil {
					err = perr
				}
			} else {
				for _, p := range written {
					fmt.Fprintln(a.Stdout, p)
				}
			}
			if err != nil {
				return err
			}
			// What synth writes passes the template checks and the best-practice policy, or it fails.
			if err := validateSynthesized(a, files); err != nil {
				return err
			}
			return synthPolicy(a, files)
		},
	}
	f := cmd.Flags()
	// -o is the output format everywhere; the directory is --out-dir (-d), as package's.
	f.StringVarP(&dir, "out-dir", "d", DefaultSynthDir, "directory to write the templates and parameter files into")
	f.StringVar(&format, "format", "yaml", "template format: yaml or json")
	f.StringSliceVar(&kinds, "stack", nil, "stack to write (repeatable: network, bastion, database); default every available stack")
	_ = cmd.RegisterFlagCompletionFunc("stack", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return stacks.Available(), cobra.ShellCompDirectiveNoFileComp
	})
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"yaml", "json"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.MarkFlagDirname("out-dir")
	return cmd
}

// selectStacks checks --stack values and returns them in deployment order; none means every
// available stack.
func selectStacks(kinds []string) ([]string, error) {
	if len(kinds) == 0 {
		return stacks.Available(), nil
	}
	available := stacks.Available()
	var out []string
	for _, k := range kinds {
		k = strings.TrimSpace(k)
		switch {
		case !slices.Contains(stacks.Order, k):
			return nil, Usagef("--stack %q: allowed values are %s", k, strings.Join(stacks.Order, ", "))
		case !slices.Contains(available, k):
			return nil, Usagef("--stack %q: this build cannot synthesize the %s stack yet (available: %s)", k, k, strings.Join(available, ", "))
		}
	}
	for _, k := range stacks.Order { // deployment order, each once
		for _, want := range kinds {
			if strings.TrimSpace(want) == k {
				out = append(out, k)
				break
			}
		}
	}
	return out, nil
}

// Synth builds the given stacks and writes, for each, its template and its parameters file into
// dir. It returns the paths written, in order, and the templates by path.
func Synth(cfg apgstack.Config, dir, format string, kinds []string) ([]string, map[string]*cft.Template, error) {
	var built []*stacks.Stack
	for _, k := range kinds {
		s, err := stacks.Build(cfg, k)
		if err != nil {
			return nil, nil, err
		}
		built = append(built, s)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("synth: %w", err)
	}
	var written []string
	files := map[string]*cft.Template{}
	for _, s := range built {
		var body []byte
		var err error
		if format == "json" {
			body, err = s.Template.JSON()
		} else {
			body, err = s.Template.YAML()
		}
		if err != nil {
			return written, files, fmt.Errorf("render %s template: %w", s.Kind, err)
		}
		params, err := ParametersJSON(s.Parameters)
		if err != nil {
			return written, files, fmt.Errorf("render %s parameters: %w", s.Kind, err)
		}
		tpath := filepath.Join(dir, s.Kind+"."+format)
		ppath := filepath.Join(dir, s.Kind+".parameters.json")
		if err := writeFileAtomic(tpath, body); err != nil {
			return written, files, err
		}
		written = append(written, tpath)
		files[tpath] = s.Template
		if err := writeFileAtomic(ppath, params); err != nil {
			return written, files, err
		}
		written = append(written, ppath)
	}
	return written, files, nil
}

// ParametersJSON renders parameter values as `aws cloudformation create-stack --parameters
// file://...` reads them: a JSON array of {"ParameterKey", "ParameterValue"}.
func ParametersJSON(params []stacks.Param) ([]byte, error) {
	if params == nil {
		params = []stacks.Param{}
	}
	b, err := json.MarshalIndent(params, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// writeFileAtomic writes through a temporary file in the same directory and renames it, so a
// reader (or an interrupted run) never sees half a template.
func writeFileAtomic(path string, data []byte) error {
	if err := atomicfile.Write(path, data, atomicfile.Mode(0o644)); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
