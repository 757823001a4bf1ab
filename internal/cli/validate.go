package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/spf13/cobra"

	"github.com/apgstack/apgstack/cft"
	"github.com/apgstack/apgstack/cft/schema"
	"github.com/apgstack/apgstack/cft/validate"
)

// fileResult is one file's outcome, as --output json prints it.
type fileResult struct {
	File     string             `json:"file"`
	OK       bool               `json:"ok"`
	Errors   int                `json:"errors"`
	Warnings int                `json:"warnings"`
	Findings []validate.Finding `json:"findings"`
}

func newValidateCmd(a *App) *cobra.Command {
	var policy bool
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check CloudFormation templates against the resource schemas and template rules",
		Long: `Check CloudFormation templates — ours or any other, YAML (short or long form) or JSON, "-" for
standard input — before CloudFormation sees them:

  - every Ref, Fn::GetAtt, Fn::Sub reference, DependsOn, Condition, Fn::If and Fn::FindInMap
    has a target (pseudo parameters allowed); conditions are well formed and refer only to
    parameters;
  - no resources depend on each other in a circle (the cycle is named);
  - export names are unique;
  - each parameter's default satisfies its own type, AllowedValues, AllowedPattern (matched
    against the whole value, as CloudFormation does), lengths and values;
  - each resource's properties fit the CloudFormation registry schema of its type: unknown
    type, missing required property, unknown property, wrong type (a list where one value
    belongs, or the reverse, included), value outside an enum, length or range.

Findings are printed as "file: logical-id: path: [rule] message", one a line, on stdout (with
--output json, one object per file). A file without findings gets an OK line on stderr.
Warnings (what cannot be checked for sure) do not fail the run.

Exit status: 0 no errors; 1 some template has errors; 2 a file could not be read or is not
a template (reported as a "read" or "parse" finding; the other files are still checked).

Resource schemas: ` + schema.Source() + ".",
		Example: `  apgstack validate synth.out/*.yaml
  apgstack validate --output json template.json
  cat template.yaml | apgstack validate -`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := a.JSON()
			if err != nil {
				return err
			}
			var results []fileResult
			templates := map[string]*cft.Template{}
			unreadable, errCount := 0, 0
			for _, file := range args {
				findings, t := validateFile(a.Stdin, file)
				if t == nil {
					unreadable++
				} else {
					templates[file] = t
				}
				r := fileResult{File: file, Findings: findings}
				if r.Findings == nil {
					r.Findings = []validate.Finding{}
				}
				r.Errors = validate.Errors(findings)
				r.Warnings = len(findings) - r.Errors
				r.OK = r.Errors == 0
				errCount += r.Errors
				results = append(results, r)
			}
			// One document on stdout: with --policy -o json, the template findings and the policy
			// report together.
			if !asJSON {
				printFindings(a, results)
			}
			var policyOut bytes.Buffer
			if policy {
				w := io.Writer(a.Stdout)
				if asJSON {
					w = &policyOut
				}
				n, err := validatePolicy(a, cmd, w, templates)
				if err != nil {
					return err
				}
				errCount += n
			}
			switch {
			case asJSON && policy:
				if err := a.PrintJSON(struct {
					Files  []fileResult    `json:"files"`
					Policy json.RawMessage `json:"policy"`
				}{results, json.RawMessage(bytes.TrimSpace(policyOut.Bytes()))}); err != nil {
					return err
				}
			case asJSON:
				if err := a.PrintJSON(results); err != nil {
					return err
				}
			}
			switch {
			case unreadable > 0:
				return Exit(ExitUsage, fmt.Errorf("validate: %d of %d files could not be read as templates", unreadable, len(args)))
			case errCount > 0:
				return Exit(ExitFailure, fmt.Errorf("validate: %s", plural(errCount, "error")))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&policy, "policy", false, "also run the best-practice policy checks")
	return cmd
}

// validateFile reads and checks one file ("-" is standard input). A file that cannot be read or
// parsed gives one finding and no template.
func validateFile(stdin io.Reader, file string) ([]validate.Finding, *cft.Template) {
	var data []byte
	var err error
	if file == "-" {
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			err = errors.New("no such file")
		}
		return []validate.Finding{{File: file, Rule: "read", Severity: validate.Error, Message: err.Error()}}, nil
	}
	return validate.Bytes(data, file)
}

func printFindings(a *App, results []fileResult) {
	for _, r := range results {
		for _, f := range r.Findings {
			fmt.Fprintln(a.Stdout, f.String())
		}
		switch {
		case len(r.Findings) == 0:
			fmt.Fprintf(a.Stderr, "%s: OK\n", r.File)
		case r.Errors == 0:
			fmt.Fprintf(a.Stderr, "%s: OK (%s)\n", r.File, plural(r.Warnings, "warning"))
		}
	}
}

// validateSynthesized is synth's check of what it has just written. It checks the templates as
// built (parsing the written YAML back would cost most of the time; validate's tests prove that
// rendered and re-read templates validate the same), reading a file only when no template is
// given. Findings go to stderr (synth's stdout lists paths).
func validateSynthesized(a *App, files map[string]*cft.Template) error {
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	errCount := 0
	for _, p := range paths {
		var findings []validate.Finding
		if t := files[p]; t != nil {
			findings = validate.Template(t, p)
		} else {
			findings, _ = validateFile(nil, p)
		}
		for _, f := range findings {
			fmt.Fprintln(a.Stderr, f.String())
		}
		errCount += validate.Errors(findings)
	}
	if errCount > 0 {
		return Exit(ExitFailure, fmt.Errorf("synth: the written templates have %s (see above)", plural(errCount, "validation error")))
	}
	return nil
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
