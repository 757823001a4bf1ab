package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/cft"
	"github.com/apgstack/apgstack/cft/policy"
)

// Policy output formats.
const (
	policyText  = "text"
	policyJSON  = "json"
	policySARIF = "sarif"
)

func newPolicyCmd(a *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Best-practice policy checks of CloudFormation templates",
		Long: `Best-practice policy checks: rules from the AWS Security Hub controls and the Aurora user
guide, evaluated per stage as CloudFormation would create the template. The rules, how templates
are evaluated and how to suppress a rule are in docs/policy-rules.md.

"apgstack validate --policy FILE..." runs the same checks after validation; "apgstack synth"
runs them on the templates it writes.`,
	}
	cmd.AddCommand(newPolicyCheckCmd(a), newPolicyRulesCmd(a))
	return cmd
}

// policyFlags are the settings of a policy run.
type policyFlags struct {
	format     string
	stages     []string
	unstagedAs string
	params     []string
}

func (f *policyFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.format, "format", "", "output: text, json or sarif (default: --output)")
	cmd.Flags().StringSliceVar(&f.stages, "stage", nil, "stages to evaluate templates with an EnvironmentStage parameter for (default: "+strings.Join(bestpractice.StageNames, ", ")+")")
	cmd.Flags().StringVar(&f.unstagedAs, "unstaged-as", "prod", "stage whose rules apply to templates without an EnvironmentStage parameter")
	cmd.Flags().StringArrayVar(&f.params, "param", nil, "parameter value Key=Value used instead of the default (repeatable)")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{policyText, policyJSON, policySARIF}, cobra.ShellCompDirectiveNoFileComp))
	completeStages(cmd)
}

func newPolicyCheckCmd(a *App) *cobra.Command {
	var f policyFlags
	cmd := &cobra.Command{
		Use:   "check FILE...",
		Short: "Check templates against the best-practice rules",
		Long: `Check CloudFormation templates (YAML or JSON, "-" for standard input) against the best-practice
rules. A template with an EnvironmentStage parameter is evaluated for each stage, and with and
without a snapshot when it has DBSnapshotName. Parameters without a default take the values of
<template>.parameters.json beside the file (as synth writes it) or of --param; a setting that
still depends on an unknown value is never taken as compliant.

Findings go to stdout; suppressed findings are listed separately with their reasons.
Exit status: 0 no unsuppressed error; 1 some remain; 2 bad usage or a file that is not a template.`,
		Example: `  apgstack policy check synth.out/database.yaml
  apgstack policy check --format sarif synth.out/*.yaml > policy.sarif
  apgstack policy check --stage prod --param DBSnapshotName=my-snapshot other-template.json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, format, err := f.options(a)
			if err != nil {
				return err
			}
			files := map[string]*cft.Template{}
			for _, file := range args {
				data, err := readTemplateFile(a.Stdin, file)
				if err != nil {
					return Exit(ExitUsage, err)
				}
				t, err := cft.Parse(data)
				if err != nil {
					return Exit(ExitUsage, fmt.Errorf("%s: %w", file, err))
				}
				files[file] = t
			}
			n, err := runPolicy(a, a.Stdout, files, opts, format)
			if err != nil {
				return err
			}
			if n > 0 {
				return Exit(ExitFailure, fmt.Errorf("policy: %s", plural(n, "unsuppressed error")))
			}
			return nil
		},
	}
	f.add(cmd)
	return cmd
}

func newPolicyRulesCmd(a *App) *cobra.Command {
	return &cobra.Command{
		Use:   "rules",
		Short: "List the best-practice rules with their severity and source",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := a.JSON()
			if err != nil {
				return err
			}
			rules := policy.Rules()
			if asJSON {
				type rule struct {
					ID        string   `json:"id"`
					Severity  string   `json:"severity"`
					Title     string   `json:"title"`
					Rationale string   `json:"rationale"`
					Fix       string   `json:"fix"`
					Source    string   `json:"source"`
					Types     []string `json:"types"`
					Stages    string   `json:"stages,omitempty"`
				}
				out := make([]rule, len(rules))
				for i, r := range rules {
					out[i] = rule{r.ID, string(r.Severity), r.Title, r.Rationale, r.Fix, r.Source, r.Types, r.Stages}
				}
				return a.PrintJSON(out)
			}
			for _, r := range rules {
				fmt.Fprintf(a.Stdout, "%-10s %-7s %s (%s)\n", r.ID, r.Severity, r.Title, r.Source)
			}
			return nil
		},
	}
}

// options turns the flags into policy options and an output format; bad values are exit-2
// errors naming the flag, the value and what is allowed.
func (f *policyFlags) options(a *App) (policy.Options, string, error) {
	format := f.format
	if format == "" {
		asJSON, err := a.JSON()
		if err != nil {
			return policy.Options{}, "", err
		}
		format = policyText
		if asJSON {
			format = policyJSON
		}
	}
	switch format {
	case policyText, policyJSON, policySARIF:
	default:
		return policy.Options{}, "", Usagef("--format %q: allowed values are text, json and sarif", format)
	}
	for _, s := range append(append([]string{}, f.stages...), f.unstagedAs) {
		if _, ok := bestpractice.Stages[s]; !ok {
			return policy.Options{}, "", Usagef("--stage %q: allowed stages are %s", s, strings.Join(bestpractice.StageNames, ", "))
		}
	}
	values := map[string]string{}
	for _, p := range f.params {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return policy.Options{}, "", Usagef("--param %q: want Key=Value, e.g. DBSnapshotName=my-snapshot", p)
		}
		values[k] = v
	}
	return policy.Options{Values: values, Stages: f.stages, UnstagedAs: f.unstagedAs}, format, nil
}

// validatePolicy is validate's --policy: the checks over the templates that parsed, printed after
// validate's own findings. It honours --format and --stage when the validate command has them.
func validatePolicy(a *App, cmd *cobra.Command, w io.Writer, files map[string]*cft.Template) (int, error) {
	var f policyFlags
	if fl := cmd.Flags().Lookup("format"); fl != nil {
		f.format = fl.Value.String()
	}
	if fl := cmd.Flags().Lookup("stage"); fl != nil && fl.Value.String() != "" {
		f.stages = strings.Split(strings.Trim(fl.Value.String(), "[]"), ",")
	}
	f.unstagedAs = "prod"
	opts, format, err := f.options(a)
	if err != nil {
		return 0, err
	}
	return runPolicy(a, w, files, opts, format)
}

// synthPolicyFails makes unsuppressed policy errors fail synth: our own templates must pass.
const synthPolicyFails = true

// synthPolicy checks the templates synth has just written, for every stage, with the parameter
// values it wrote beside them. Findings go to stderr (synth's stdout lists paths).
func synthPolicy(a *App, files map[string]*cft.Template) error {
	n, err := runPolicy(a, a.Stderr, files, policy.Options{}, policyText)
	if err != nil {
		return err
	}
	if n > 0 && synthPolicyFails {
		return Exit(ExitFailure, fmt.Errorf("synth: the written templates break best-practice rules: %s (see above)", plural(n, "unsuppressed error")))
	}
	return nil
}

// runPolicy checks the files (each with the values of its parameters file, if there is one, under
// opts.Values), writes the report in the format and returns the number of unsuppressed errors.
func runPolicy(a *App, w io.Writer, files map[string]*cft.Template, opts policy.Options, format string) (int, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	r := policy.NewReport()
	for _, name := range names {
		o := opts
		values, err := siblingParameters(name)
		if err != nil {
			return 0, Exit(ExitUsage, err)
		}
		for k, v := range opts.Values {
			values[k] = v
		}
		o.Values = values
		if err := r.Check(name, files[name], o); err != nil {
			return 0, Exit(ExitUsage, err)
		}
	}
	for _, name := range names {
		if name == "-" {
			continue
		}
		if data, err := os.ReadFile(name); err == nil {
			policy.Locate(name, data, r.Findings)
			policy.Locate(name, data, r.Suppressed)
		}
	}
	var err error
	switch format {
	case policyJSON:
		err = r.WriteJSON(w)
	case policySARIF:
		err = r.WriteSARIF(w)
	default:
		err = r.WriteText(w)
	}
	if err != nil {
		return 0, fmt.Errorf("policy: write report: %w", err)
	}
	return r.Errors(), nil
}

// siblingParameters reads <template>.parameters.json beside a template file (as synth writes
// it, in the form of aws cloudformation create-stack --parameters); none is an empty map.
func siblingParameters(file string) (map[string]string, error) {
	values := map[string]string{}
	if file == "-" {
		return values, nil
	}
	path := strings.TrimSuffix(file, filepath.Ext(file)) + ".parameters.json"
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return values, nil
	}
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	var params []struct{ ParameterKey, ParameterValue string }
	if err := json.Unmarshal(data, &params); err != nil {
		return nil, fmt.Errorf("policy: %s: want a JSON array of {ParameterKey, ParameterValue}: %w", path, err)
	}
	for _, p := range params {
		values[p.ParameterKey] = p.ParameterValue
	}
	return values, nil
}

// readTemplateFile reads a file, "-" being standard input.
func readTemplateFile(stdin io.Reader, file string) ([]byte, error) {
	if file == "-" {
		return io.ReadAll(stdin)
	}
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: no such file", file)
	}
	return data, err
}
