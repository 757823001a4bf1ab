package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/apgstack/apgstack/cft"
	"github.com/apgstack/apgstack/internal/aws/stacks"
)

// explained is what `explain --output json` prints.
type explained struct {
	Stack      string              `json:"stack"`
	Kind       string              `json:"kind"`
	Parameters map[string]string   `json:"parameters"`
	Conditions map[string]bool     `json:"conditions"`
	Resources  []explainedResource `json:"resources"`
	Outputs    []explainedOutput   `json:"outputs"`
}

type explainedResource struct {
	Name                string         `json:"name"`
	Type                string         `json:"type"`
	DependsOn           []string       `json:"dependsOn,omitempty"`
	DeletionPolicy      string         `json:"deletionPolicy,omitempty"`
	UpdateReplacePolicy string         `json:"updateReplacePolicy,omitempty"`
	Properties          map[string]any `json:"properties"`
}

type explainedOutput struct {
	Name  string `json:"name"`
	Value any    `json:"value"`
}

func newExplainCmd(a *App) *cobra.Command {
	var stage, snapshot, kind string
	cmd := &cobra.Command{
		Use:   "explain",
		Short: "Show what a stack really creates for the configured stage: its resources and their effective settings",
		Long: `Evaluate a stack's template for the parameter values of the configuration — conditions decided,
Fn::If chosen, parameters and the per-stage mapping filled in — and print the resources
CloudFormation would create, with their effective settings. Values known only once resources
exist (their ids, attributes, imported exports) stay as !Ref, !GetAtt, !ImportValue.

--stage and --snapshot answer "what if" without editing the configuration: the stage a
pre-prod or prod stack would get, or what a restore from a snapshot leaves out.`,
		Example: `  apgstack explain
  apgstack explain --stage prod
  apgstack explain --stage pre-prod --snapshot my-final-snapshot --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := a.JSON()
			if err != nil {
				return err
			}
			selected, err := selectStacks([]string{kind})
			if err != nil {
				return err
			}
			cfg, err := a.Config(cmd)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("stage") {
				if err := cfg.Set("environment.stage", stage); err != nil {
					return Exit(ExitUsage, fmt.Errorf("--stage: %w", err))
				}
			}
			if cmd.Flags().Changed("snapshot") {
				if err := cfg.Set("database.snapshotName", snapshot); err != nil {
					return Exit(ExitUsage, fmt.Errorf("--snapshot: %w", err))
				}
			}
			if err := cfg.Validate(); err != nil {
				return Exit(ExitUsage, err)
			}
			s, err := stacks.Build(cfg, selected[0])
			if err != nil {
				return err
			}
			e, err := stacks.Explain(s)
			if err != nil {
				return err
			}
			x := toExplained(e)
			if asJSON {
				return a.PrintJSON(x)
			}
			printAdvice(a, cfg)
			for _, n := range cfg.Notes() {
				fmt.Fprintln(a.Stderr, "note:", n)
			}
			return printExplained(a.Stdout, x)
		},
	}
	f := cmd.Flags()
	f.StringVar(&stage, "stage", "", "evaluate for this EnvironmentStage instead of environment.stage (dev, test, pre-prod, prod)")
	f.StringVar(&snapshot, "snapshot", "", "evaluate a restore from this DB cluster snapshot instead of database.snapshotName")
	f.StringVar(&kind, "stack", stacks.Database, "the stack to explain: "+strings.Join(stacks.Order, ", "))
	completeStages(cmd)
	completeFixed(cmd, "stack", stacks.Order)
	return cmd
}

func toExplained(e *stacks.Effective) explained {
	x := explained{Stack: e.Stack.Name, Kind: e.Stack.Kind, Parameters: e.Stack.ParameterMap(), Conditions: e.Conditions}
	for _, r := range e.Resources {
		x.Resources = append(x.Resources, explainedResource{Name: r.Name, Type: r.Type, DependsOn: r.DependsOn,
			DeletionPolicy: r.DeletionPolicy, UpdateReplacePolicy: r.UpdateReplacePolicy, Properties: r.Properties})
	}
	for _, o := range e.Outputs {
		x.Outputs = append(x.Outputs, explainedOutput{Name: o.Name, Value: o.Value})
	}
	return x
}

func printExplained(w io.Writer, x explained) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s stack %s: %d resources\n", x.Kind, x.Stack, len(x.Resources))
	if len(x.Conditions) > 0 {
		var conds []string
		for _, k := range explainKeys(x.Conditions) {
			conds = append(conds, fmt.Sprintf("%s=%v", k, x.Conditions[k]))
		}
		fmt.Fprintf(&b, "conditions: %s\n", strings.Join(conds, " "))
	}
	for _, r := range x.Resources {
		fmt.Fprintf(&b, "\n%s (%s)\n", r.Name, r.Type)
		if len(r.DependsOn) > 0 {
			fmt.Fprintf(&b, "  after: %s\n", strings.Join(r.DependsOn, ", "))
		}
		if r.DeletionPolicy != "" {
			fmt.Fprintf(&b, "  on delete: %s\n", r.DeletionPolicy)
		}
		if r.UpdateReplacePolicy != "" {
			fmt.Fprintf(&b, "  on replace: %s\n", r.UpdateReplacePolicy)
		}
		for _, k := range explainKeys(r.Properties) {
			if k == "Tags" {
				fmt.Fprintf(&b, "  Tags: %s\n", explainTags(r.Properties[k]))
				continue
			}
			explainFlatten(&b, "  "+k, r.Properties[k])
		}
	}
	if len(x.Outputs) > 0 {
		b.WriteString("\noutputs:\n")
		for _, o := range x.Outputs {
			fmt.Fprintf(&b, "  %s: %s\n", o.Name, explainShort(o.Value))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// explainFlatten prints one line per leaf: Path.To[0].Leaf: value.
func explainFlatten(b *strings.Builder, path string, v any) {
	if _, _, ok := cft.Intrinsic(v); ok {
		fmt.Fprintf(b, "%s: %s\n", path, explainShort(v))
		return
	}
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 {
			fmt.Fprintf(b, "%s: {}\n", path)
		}
		for _, k := range explainKeys(x) {
			explainFlatten(b, path+"."+k, x[k])
		}
	case []any:
		if scalars(x) {
			fmt.Fprintf(b, "%s: %s\n", path, explainShort(x))
			return
		}
		for i, e := range x {
			explainFlatten(b, fmt.Sprintf("%s[%d]", path, i), e)
		}
	default:
		fmt.Fprintf(b, "%s: %s\n", path, explainShort(v))
	}
}

// scalars reports whether a list holds only values that print on one line.
func scalars(list []any) bool {
	for _, e := range list {
		if _, _, ok := cft.Intrinsic(e); ok {
			continue
		}
		switch e.(type) {
		case map[string]any, []any:
			return false
		}
	}
	return true
}

// explainShort renders a value on one line, intrinsics in their short form (!Ref X, !GetAtt X.Y).
func explainShort(v any) string {
	if name, arg, ok := cft.Intrinsic(v); ok {
		tag := cft.Functions[name]
		switch a := arg.(type) {
		case string:
			if a == "" {
				return tag + " ''"
			}
			return tag + " " + a
		case []any:
			if r, at, isGetAtt := cft.GetAttTarget(v); isGetAtt {
				return tag + " " + r + "." + at
			}
			return tag + " " + explainShort(a)
		default:
			return tag + " " + explainShort(a)
		}
	}
	switch x := v.(type) {
	case string:
		return x
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = explainShort(e)
			if s, ok := e.(string); ok && (s == "" || strings.TrimSpace(s) != s || strings.ContainsAny(s, ",[]{}'")) {
				parts[i] = "'" + strings.ReplaceAll(s, "'", "''") + "'"
			}
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		parts := make([]string, 0, len(x))
		for _, k := range explainKeys(x) {
			parts = append(parts, k+": "+explainShort(x[k]))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	j, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(j)
}

// explainTags prints a Tags list as Key=Value pairs.
func explainTags(v any) string {
	list, _ := v.([]any)
	parts := make([]string, 0, len(list))
	for _, t := range list {
		m, _ := t.(map[string]any)
		parts = append(parts, fmt.Sprintf("%s=%s", explainShort(m["Key"]), explainShort(m["Value"])))
	}
	return strings.Join(parts, ", ")
}

func explainKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
