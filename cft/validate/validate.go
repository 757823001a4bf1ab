// Package validate checks any CloudFormation template — ours or not — the way CloudFormation
// would before it creates anything: every reference has a target, resources do not depend on each
// other in a circle, export names are unique, parameter defaults satisfy their own constraints,
// conditions are well formed, and each resource's properties fit the registry schema of its type
// (cft/schema). Checks aim at no false positives: what cannot be decided without deploying
// (values of intrinsic functions, oneOf alternatives, patterns) is accepted.
package validate

import (
	"fmt"
	"sort"
	"strings"

	"github.com/apgstack/apgstack/cft"
)

// Severity of a finding: errors make a template fail; warnings do not.
type Severity string

// Severities.
const (
	Error   Severity = "error"
	Warning Severity = "warning"
)

// Finding is one problem in a template.
type Finding struct {
	File string `json:"file"`
	// Resource is the logical id the finding is about: a resource, parameter, output, condition,
	// mapping or rule ("" for the template as a whole).
	Resource string `json:"resource,omitempty"`
	// Path is where inside that entry, e.g. Properties.Tags[0].Key.
	Path     string   `json:"path,omitempty"`
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
}

// String formats a finding as "file: logical-id: path: [rule] message", leaving out empty parts.
func (f Finding) String() string {
	var b strings.Builder
	for _, part := range []string{f.File, f.Resource, f.Path} {
		if part != "" {
			b.WriteString(part)
			b.WriteString(": ")
		}
	}
	fmt.Fprintf(&b, "[%s] ", f.Rule)
	if f.Severity == Warning {
		b.WriteString("warning: ")
	}
	b.WriteString(f.Message)
	return b.String()
}

// Rules, one per kind of finding; tests and callers match on them.
const (
	RuleParse            = "parse"              // the file is not a template
	RuleDuplicateID      = "duplicate-id"       // a logical id used twice
	RuleLogicalID        = "logical-id"         // a logical id that is not alphanumeric
	RuleRefTarget        = "ref-target"         // Ref or ${Name} to nothing
	RuleGetAttTarget     = "getatt-target"      // Fn::GetAtt or ${Res.Attr} to no resource
	RuleGetAttAttribute  = "getatt-attribute"   // an attribute the type does not have (an error)
	RuleDependsOnTarget  = "depends-on-target"  // DependsOn a resource that is not there
	RuleConditionTarget  = "condition-target"   // a condition name that is not defined
	RuleConditionForm    = "condition-form"     // a condition that is not a condition function
	RuleConditionRef     = "condition-ref"      // a condition that refers to a resource
	RuleConditionCycle   = "condition-cycle"    // conditions that refer to each other in a circle
	RuleIntrinsicForm    = "intrinsic-form"     // an intrinsic function with the wrong arguments
	RuleFindInMapTarget  = "findinmap-target"   // Fn::FindInMap of a mapping or key not there
	RuleCycle            = "cycle"              // resources depending on each other in a circle
	RuleExportDuplicate  = "export-duplicate"   // two outputs exporting the same name
	RuleParameterType    = "parameter-type"     // a parameter type CloudFormation does not have
	RuleParameterDefault = "parameter-default"  // a default that breaks its own constraints
	RuleParameterPattern = "parameter-pattern"  // an AllowedPattern that cannot be checked here
	RuleUnknownType      = "unknown-type"       // a resource type the registry does not have
	RuleRequired         = "required-property"  // a required property missing
	RuleUnknownProperty  = "unknown-property"   // a property the type's schema does not have
	RulePropertyType     = "property-type"      // a value of the wrong type
	RuleEnum             = "enum"               // a value outside the schema's allowed values
	RuleRange            = "value-range"        // a value too long, short, small or large for the schema
	RuleReadOnly         = "read-only-property" // a property only CloudFormation sets
	RuleTransform        = "transform-required" // a resource that needs a transform the template lacks
	RuleResourceAttr     = "resource-attribute" // DeletionPolicy, UpdateReplacePolicy values
	RuleOutputValue      = "output-value"       // an output whose value is not a single string
	RuleConditionalRef   = "conditional-ref"    // an unconditional reference to a conditional resource
	RuleNoResources      = "no-resources"       // a template without resources
)

// Bytes parses and validates a template. A file that cannot be parsed gives one finding with the
// rule "parse" and the parse error.
func Bytes(data []byte, file string) ([]Finding, *cft.Template) {
	t, err := cft.Parse(data)
	if err != nil {
		return []Finding{{File: file, Rule: RuleParse, Severity: Error, Message: err.Error()}}, nil
	}
	return Template(t, file), t
}

// Template validates a parsed template. Findings come in template order: template-wide, then
// parameters, conditions, resources, outputs.
func Template(t *cft.Template, file string) []Finding {
	c := &checker{t: t, file: file}
	c.index()
	c.parameters()
	c.conditions()
	c.mappingsAndRules()
	c.checkResources()
	c.checkOutputs()
	c.cycles()
	c.exports()
	c.transformed()
	return c.sorted()
}

// awsTransforms are the transforms AWS provides; any other is a macro, which may rewrite the
// template before CloudFormation checks it.
var awsTransforms = map[string]bool{
	"AWS::Serverless-2016-10-31":     true,
	"AWS::SecretsManager-2020-07-23": true,
	"AWS::SecretsManager-2024-09-16": true,
	"AWS::LanguageExtensions":        true,
	"AWS::Include":                   true,
	"AWS::CodeDeployBlueGreen":       true,
}

// schemaRules are the findings a macro could make moot; targetRules those a transform that adds
// resources (a macro, or AWS::Serverless, which adds roles, APIs, versions and aliases) could.
var (
	schemaRules = map[string]bool{
		RuleUnknownType: true, RuleRequired: true, RuleUnknownProperty: true, RulePropertyType: true, RuleEnum: true,
		RuleGetAttAttribute: true,
	}
	targetRules = map[string]bool{
		RuleRefTarget: true, RuleGetAttTarget: true, RuleDependsOnTarget: true,
	}
)

// transformed turns findings into warnings where a transform may change what they are about: what a
// macro makes of a template, or which resources the Serverless transform adds, is known only
// when CloudFormation runs it.
func (c *checker) transformed() {
	var names []string
	serverless := false
	for _, t := range c.t.Transform {
		if !awsTransforms[t] {
			names = append(names, t)
		}
		serverless = serverless || t == serverlessTransform
	}
	if len(names) == 0 && !serverless {
		return
	}
	note := fmt.Sprintf(" (the template declares the macro %s, which may change this)", strings.Join(names, ", "))
	if len(names) == 0 {
		note = " (the " + serverlessTransform + " transform may add it)"
	}
	for i := range c.findings {
		f := &c.findings[i]
		if f.Severity == Error && (targetRules[f.Rule] || len(names) > 0 && schemaRules[f.Rule]) {
			f.Severity = Warning
			f.Message += note
		}
	}
}

// Errors counts the findings of severity error.
func Errors(fs []Finding) int {
	n := 0
	for _, f := range fs {
		if f.Severity == Error {
			n++
		}
	}
	return n
}

type checker struct {
	t        *cft.Template
	file     string
	findings []finding

	params    map[string]*cft.Parameter
	resources map[string]*cft.Resource
	conds     map[string]bool
	// graph holds each resource's dependencies, filled by resources() and read by cycles().
	graph map[string][]string
	// entryCond is the Condition of the resource or output being checked; guarded is true while
	// refs is inside a branch of Fn::If.
	entryCond string
	guarded   bool
}

// finding carries the order key used to sort findings into template order.
type finding struct {
	Finding
	section int
	order   int
}

// Sections, in the order findings are reported.
const (
	secTemplate = iota
	secParameters
	secMappings
	secConditions
	secRules
	secResources
	secOutputs
)

// at names where a check is looking: the section, the entry's position and logical id.
type at struct {
	section int
	order   int
	id      string
}

func (c *checker) add(where at, path, rule string, sev Severity, format string, args ...any) {
	c.findings = append(c.findings, finding{
		Finding: Finding{File: c.file, Resource: where.id, Path: path, Rule: rule, Severity: sev, Message: fmt.Sprintf(format, args...)},
		section: where.section, order: where.order,
	})
}

func (c *checker) errorf(where at, path, rule, format string, args ...any) {
	c.add(where, path, rule, Error, format, args...)
}

func (c *checker) warnf(where at, path, rule, format string, args ...any) {
	c.add(where, path, rule, Warning, format, args...)
}

func (c *checker) sorted() []Finding {
	sort.SliceStable(c.findings, func(i, j int) bool {
		a, b := c.findings[i], c.findings[j]
		if a.section != b.section {
			return a.section < b.section
		}
		return a.order < b.order
	})
	out := make([]Finding, 0, len(c.findings))
	seen := map[Finding]bool{}
	for _, f := range c.findings {
		if !seen[f.Finding] { // the same reference reached twice (e.g. cycle and ref) says it once
			seen[f.Finding] = true
			out = append(out, f.Finding)
		}
	}
	return out
}

// index builds the lookup tables and reports duplicate or malformed logical ids.
func (c *checker) index() {
	c.params = map[string]*cft.Parameter{}
	c.resources = map[string]*cft.Resource{}
	c.conds = map[string]bool{}
	ids := map[string]string{}
	claim := func(where at, section, name string) {
		if prev, dup := ids[name]; dup {
			c.errorf(where, "", RuleDuplicateID, "logical id %q is used in both %s and %s", name, prev, section)
			return
		}
		ids[name] = section
	}
	for i, p := range c.t.Parameters {
		where := at{secParameters, i, p.Name}
		claim(where, "Parameters", p.Name)
		checkID(c, where, p.Name)
		c.params[p.Name] = p
	}
	for i, r := range c.t.Resources {
		where := at{secResources, i, r.Name}
		claim(where, "Resources", r.Name)
		checkID(c, where, r.Name)
		c.resources[r.Name] = r
	}
	for i, o := range c.t.Outputs {
		checkID(c, at{secOutputs, i, o.Name}, o.Name)
	}
	for _, cd := range c.t.Conditions {
		c.conds[cd.Name] = true
	}
	if len(c.t.Resources) == 0 {
		c.errorf(at{secTemplate, 0, ""}, "Resources", RuleNoResources, "a template needs at least one resource")
	}
}

func checkID(c *checker, where at, name string) {
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			c.errorf(where, "", RuleLogicalID, "logical id %q must be alphanumeric (A-Za-z0-9)", name)
			return
		}
	}
	if name == "" {
		c.errorf(where, "", RuleLogicalID, "empty logical id")
	}
}
