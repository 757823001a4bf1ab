// Package policy checks CloudFormation templates against AWS's published best practice for the
// resource types apgstack uses: the AWS Security Hub controls for RDS, EC2/VPC, KMS, Secrets
// Manager, Lambda, IAM, SNS, CloudWatch and Auto Scaling, and the Aurora user guide.
//
// A template is checked as CloudFormation would create it: when it has an EnvironmentStage
// parameter it is evaluated once per stage (and, when it has a DBSnapshotName parameter, with and
// without a snapshot), so a setting only right for prod is caught on dev. A value the template
// cannot show (a parameter without a value, an intrinsic that depends on another resource) is
// never taken as compliant by a rule that needs a literal.
//
// A resource may suppress a rule in its Metadata, with a written reason:
//
//	Metadata:
//	  apgstack:
//	    suppress:
//	      - rule: RDS-004
//	        reason: the cluster is a throwaway copy, rebuilt nightly from a snapshot
//
// Suppressed findings are reported separately with their reasons; a suppression without a reason
// is itself an error.
package policy

import (
	"fmt"
	"sort"
	"strings"

	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/cft"
)

// Severity of a rule: an unsuppressed error fails the check, a warning does not.
type Severity string

// Severities.
const (
	Error   Severity = "error"
	Warning Severity = "warning"
)

// Rule is one best-practice check.
type Rule struct {
	ID        string
	Severity  Severity
	Title     string   // what a compliant template does, in a few words
	Rationale string   // why, in one line
	Fix       string   // what to change
	Source    string   // the Security Hub control or user guide chapter it comes from
	Types     []string // the resource types it looks at
	// Stages says when the rule depends on the stage evaluated, for the docs ("" when it does not).
	Stages string
	check  func(c *Context) []Violation
}

// Violation is what a rule's check reports: where, and what is wrong.
type Violation struct {
	Resource string // logical id
	Path     string // e.g. Properties.StorageEncrypted
	Message  string
}

// Finding is a violation of a rule in a file, for the stages it was seen in.
type Finding struct {
	File string `json:"file"`
	// Stages are the evaluations the finding was seen in ("prod", "prod+snapshot"); empty for a
	// template without an EnvironmentStage or DBSnapshotName parameter.
	Stages   []string `json:"stages,omitempty"`
	Resource string   `json:"resource,omitempty"`
	Type     string   `json:"type,omitempty"`
	Path     string   `json:"path,omitempty"`
	// Line is where the finding's resource or property is in the file (0: unknown); see Locate.
	Line     int      `json:"line,omitempty"`
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
	// Reason is the suppression's reason, for suppressed findings.
	Reason string `json:"reason,omitempty"`
}

// String formats a finding on one line: file: resource: path: [rule] severity (stages): message.
func (f Finding) String() string {
	var b strings.Builder
	for _, part := range []string{f.File, f.Resource, f.Path} {
		if part != "" {
			b.WriteString(part)
			b.WriteString(": ")
		}
	}
	fmt.Fprintf(&b, "[%s] %s", f.Rule, f.Severity)
	if len(f.Stages) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(f.Stages, ", "))
	}
	b.WriteString(": ")
	b.WriteString(f.Message)
	if f.Reason != "" {
		fmt.Fprintf(&b, " — suppressed: %s", f.Reason)
	}
	return b.String()
}

// Options tune an evaluation.
type Options struct {
	// Values are parameter values used instead of defaults (e.g. from a parameters file).
	// EnvironmentStage and DBSnapshotName are varied regardless.
	Values map[string]string
	// Stages restricts the stages evaluated (nil: every stage of bestpractice.StageNames).
	Stages []string
	// UnstagedAs is the stage whose rules apply to a template without an EnvironmentStage
	// parameter; empty means prod, the strictest.
	UnstagedAs string
}

// Report is the outcome of checking one or more files.
type Report struct {
	Files      []string  `json:"files"`
	Findings   []Finding `json:"findings"`
	Suppressed []Finding `json:"suppressed"`
}

// Errors counts the unsuppressed errors.
func (r *Report) Errors() int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == Error {
			n++
		}
	}
	return n
}

// Warnings counts the unsuppressed warnings.
func (r *Report) Warnings() int { return len(r.Findings) - r.Errors() }

// Parameter names that span the evaluations.
const (
	StageParameter    = "EnvironmentStage"
	SnapshotParameter = "DBSnapshotName"
)

// SnapshotPlaceholder is the DBSnapshotName given in the "with a snapshot" evaluation.
const SnapshotPlaceholder = "arn:aws:rds:us-east-1:123456789012:cluster-snapshot:apgstack-policy-check"

// placeholder is the value a parameter without default and without a given value takes. It
// names the parameter so that findings can say where a value came from, and it satisfies no
// rule that needs a literal.
func placeholder(param string) string { return "{{apgstack:unset:" + param + "}}" }

// placeholderParam returns the parameter a placeholder (possibly inside a larger string) names.
func placeholderParam(s string) (string, bool) {
	i := strings.Index(s, "{{apgstack:unset:")
	if i < 0 {
		return "", false
	}
	rest := s[i+len("{{apgstack:unset:"):]
	j := strings.Index(rest, "}}")
	if j < 0 {
		return "", false
	}
	return rest[:j], true
}

// Check evaluates every rule over one template in every variant and returns its findings, split
// into unsuppressed and suppressed, deduplicated across variants.
func Check(file string, t *cft.Template, opts Options) (findings, suppressed []Finding, err error) {
	variants, err := variantsOf(t, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	type key struct{ rule, resource, path, message, reason string }
	merged := map[key]*Finding{}
	var order []key
	for _, v := range variants {
		tv, unknown := t, unknownConditions(t, v.values)
		if len(unknown) > 0 {
			tv = withUnknownConditions(t, unknown)
		}
		ev, err := tv.Evaluate(v.values)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: evaluate for %s: %w", file, v.describe(), err)
		}
		for c := range unknown {
			ev.Conditions[c] = true // resources under an unknown condition are checked as if created
		}
		c := newContext(file, t, ev, v.stage)
		for _, f := range c.run() {
			k := key{f.Rule, f.Resource, f.Path, f.Message, f.Reason}
			if prev, ok := merged[k]; ok {
				if v.label != "" {
					prev.Stages = append(prev.Stages, v.label)
				}
				continue
			}
			f.File = file
			if v.label != "" {
				f.Stages = []string{v.label}
			}
			ff := f
			merged[k] = &ff
			order = append(order, k)
		}
	}
	for _, k := range order {
		f := *merged[k]
		if f.Reason != "" {
			suppressed = append(suppressed, f)
		} else {
			findings = append(findings, f)
		}
	}
	sortFindings(findings)
	sortFindings(suppressed)
	return findings, suppressed, nil
}

// Run checks several templates (file name to template) and gathers one report, files in name
// order.
func Run(files map[string]*cft.Template, opts Options) (*Report, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	r := NewReport()
	for _, n := range names {
		if err := r.Check(n, files[n], opts); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// NewReport returns an empty report, to Check files into one by one.
func NewReport() *Report {
	return &Report{Files: []string{}, Findings: []Finding{}, Suppressed: []Finding{}}
}

// Check checks one more template into the report.
func (r *Report) Check(file string, t *cft.Template, opts Options) error {
	fs, sup, err := Check(file, t, opts)
	if err != nil {
		return err
	}
	r.Files = append(r.Files, file)
	r.Findings = append(r.Findings, fs...)
	r.Suppressed = append(r.Suppressed, sup...)
	return nil
}

func sortFindings(fs []Finding) {
	rank := map[Severity]int{Error: 0, Warning: 1}
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if rank[a.Severity] != rank[b.Severity] {
			return rank[a.Severity] < rank[b.Severity]
		}
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		if a.Resource != b.Resource {
			return a.Resource < b.Resource
		}
		return a.Path < b.Path
	})
}

// variant is one evaluation of a template: a stage, with or without a snapshot.
type variant struct {
	label  string // "" for a template evaluated once
	stage  string // the stage whose rules apply
	values map[string]string
}

func (v variant) describe() string {
	if v.label == "" {
		return "its defaults"
	}
	return v.label
}

func variantsOf(t *cft.Template, opts Options) ([]variant, error) {
	base := map[string]string{}
	for _, p := range t.Parameters {
		if p.Default == nil {
			base[p.Name] = placeholder(p.Name)
		}
	}
	for k, v := range opts.Values {
		base[k] = v
	}
	unstaged := opts.UnstagedAs
	if unstaged == "" {
		unstaged = "prod"
	}
	if _, ok := bestpractice.Stages[unstaged]; !ok {
		return nil, fmt.Errorf("stage %q: allowed stages are %s", unstaged, strings.Join(bestpractice.StageNames, ", "))
	}
	stages := []string{""}
	if p := t.Parameter(StageParameter); p != nil {
		want := opts.Stages
		if want == nil {
			want = bestpractice.StageNames
		}
		stages = nil
		for _, s := range want {
			if _, ok := bestpractice.Stages[s]; !ok {
				return nil, fmt.Errorf("stage %q: allowed stages are %s", s, strings.Join(bestpractice.StageNames, ", "))
			}
			if allowed(p, s) {
				stages = append(stages, s)
			}
		}
		if len(stages) == 0 {
			// The parameter admits none of our stages: evaluate as given and apply UnstagedAs.
			stages = []string{""}
		}
	}
	snapshots := []string{""}
	if t.Parameter(SnapshotParameter) != nil {
		snapshots = []string{"", SnapshotPlaceholder}
	}
	var out []variant
	for _, s := range stages {
		for _, snap := range snapshots {
			v := variant{stage: s, values: map[string]string{}}
			for k, val := range base {
				v.values[k] = val
			}
			if s == "" {
				v.stage = unstaged
			} else {
				v.values[StageParameter] = s
				v.label = s
			}
			if t.Parameter(SnapshotParameter) != nil {
				v.values[SnapshotParameter] = snap
				if snap != "" {
					if v.label == "" {
						v.label = "snapshot"
					} else {
						v.label += "+snapshot"
					}
				} else if v.label == "" {
					v.label = "no-snapshot"
				}
			}
			out = append(out, v)
		}
	}
	return out, nil
}

func allowed(p *cft.Parameter, value string) bool {
	if len(p.AllowedValues) == 0 {
		return true
	}
	for _, a := range p.AllowedValues {
		if fmt.Sprint(a) == value {
			return true
		}
	}
	return false
}
