// Package cft is a small CloudFormation template model: parameters, interface metadata,
// mappings, conditions, rules, transforms, resources and outputs, with the intrinsic functions as
// values. It renders YAML (with short-form tags) and JSON, byte-identical for the same input,
// parses any template (YAML short or long form, or JSON) into the same model, and evaluates
// conditions for given parameter values.
//
// Values inside a template are plain Go values: string, bool, int, float64, nil, []any and
// map[string]any. An intrinsic function is a map with one key ("Ref", "Fn::Sub", ...), as in a
// JSON template; the constructors in intrinsic.go build them, and the YAML renderer writes them
// in short form (!Ref, !Sub, ...).
package cft

import (
	"fmt"
)

// FormatVersion is the only AWSTemplateFormatVersion there is.
const FormatVersion = "2010-09-09"

// Template is one CloudFormation template. Sections keep the order in which entries were added
// (or appeared in the parsed file); properties inside them are rendered with sorted keys.
type Template struct {
	Description string
	Transform   []string
	// Metadata holds top-level metadata other than AWS::CloudFormation::Interface.
	Metadata   map[string]any
	Interface  *Interface
	Parameters []*Parameter
	Rules      []*Named
	Mappings   []*Mapping
	Conditions []*Named
	Resources  []*Resource
	Outputs    []*Output
	// Globals is the SAM transform's Globals section, kept as written.
	Globals map[string]any
	// ForEach holds Fn::ForEach::<Name> entries of Resources (the LanguageExtensions
	// transform), kept as written: the transform expands them into resources at deploy time.
	ForEach []*Named
}

// Interface is AWS::CloudFormation::Interface: how the console groups and labels parameters.
type Interface struct {
	ParameterGroups []ParameterGroup
	ParameterLabels map[string]string
}

// ParameterGroup is one labelled group of parameters in the console.
type ParameterGroup struct {
	Label      string
	Parameters []string
}

// Parameter is a template parameter with its constraints.
type Parameter struct {
	Name                  string
	Type                  string
	Description           string
	Default               any // nil: no default
	AllowedValues         []any
	AllowedPattern        string
	MinLength, MaxLength  *int
	MinValue, MaxValue    *float64
	ConstraintDescription string
	NoEcho                bool
}

// Named is a named entry whose body is a template value: a condition or a rule.
type Named struct {
	Name  string
	Value any
}

// Mapping is a two-level lookup table for Fn::FindInMap.
type Mapping struct {
	Name   string
	Values map[string]map[string]any
}

// Resource is one resource with its attributes.
type Resource struct {
	Name                string
	Type                string
	Condition           string
	DependsOn           []string
	DeletionPolicy      string
	UpdateReplacePolicy string
	CreationPolicy      map[string]any
	UpdatePolicy        map[string]any
	Metadata            map[string]any
	Properties          map[string]any
}

// Output is a stack output, optionally exported.
type Output struct {
	Name        string
	Description string
	Condition   string
	Value       any
	Export      any // the export name; nil: not exported
}

// New returns an empty template with a description.
func New(description string) *Template { return &Template{Description: description} }

// Int and Float return pointers for the optional numeric constraints.
func Int(v int) *int           { return &v }
func Float(v float64) *float64 { return &v }

// AddParameter appends a parameter and returns it for further settings.
func (t *Template) AddParameter(p *Parameter) *Parameter {
	t.Parameters = append(t.Parameters, p)
	return p
}

// AddCondition appends a condition.
func (t *Template) AddCondition(name string, expr any) {
	t.Conditions = append(t.Conditions, &Named{Name: name, Value: expr})
}

// AddRule appends a rule.
func (t *Template) AddRule(name string, body any) {
	t.Rules = append(t.Rules, &Named{Name: name, Value: body})
}

// AddMapping appends a mapping.
func (t *Template) AddMapping(name string, values map[string]map[string]any) {
	t.Mappings = append(t.Mappings, &Mapping{Name: name, Values: values})
}

// AddResource appends a resource and returns it.
func (t *Template) AddResource(name, typ string, props map[string]any) *Resource {
	r := &Resource{Name: name, Type: typ, Properties: props}
	t.Resources = append(t.Resources, r)
	return r
}

// AddOutput appends an output and returns it.
func (t *Template) AddOutput(o *Output) *Output {
	t.Outputs = append(t.Outputs, o)
	return o
}

// Parameter returns the named parameter or nil.
func (t *Template) Parameter(name string) *Parameter {
	for _, p := range t.Parameters {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Resource returns the named resource or nil.
func (t *Template) Resource(name string) *Resource {
	for _, r := range t.Resources {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// Clone copies the template and its resources, so that a resource's type, condition or
// attributes can be changed in the copy; property values are shared, not copied.
func (t *Template) Clone() *Template {
	c := *t
	c.Resources = make([]*Resource, len(t.Resources))
	for i, r := range t.Resources {
		rc := *r
		c.Resources[i] = &rc
	}
	return &c
}

// Output returns the named output or nil.
func (t *Template) Output(name string) *Output {
	for _, o := range t.Outputs {
		if o.Name == name {
			return o
		}
	}
	return nil
}

// Condition returns the named condition's expression and whether it exists.
func (t *Template) Condition(name string) (any, bool) {
	for _, c := range t.Conditions {
		if c.Name == name {
			return c.Value, true
		}
	}
	return nil, false
}

// Mapping returns the named mapping or nil.
func (t *Template) Mapping(name string) *Mapping {
	for _, m := range t.Mappings {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// ResourcesOfType returns the resources of one type, in template order.
func (t *Template) ResourcesOfType(typ string) []*Resource {
	var out []*Resource
	for _, r := range t.Resources {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

// Group adds a console parameter group with its parameters, in order.
func (t *Template) Group(label string, params ...string) {
	if t.Interface == nil {
		t.Interface = &Interface{}
	}
	t.Interface.ParameterGroups = append(t.Interface.ParameterGroups, ParameterGroup{Label: label, Parameters: params})
}

// Label sets the console label of a parameter.
func (t *Template) Label(param, label string) {
	if t.Interface == nil {
		t.Interface = &Interface{}
	}
	if t.Interface.ParameterLabels == nil {
		t.Interface.ParameterLabels = map[string]string{}
	}
	t.Interface.ParameterLabels[param] = label
}

// Check reports structural mistakes a builder can make: duplicate logical ids across sections,
// resources without a type. The validate package does the full checks.
func (t *Template) Check() error {
	seen := map[string]string{}
	add := func(section, name string) error {
		if prev, ok := seen[name]; ok {
			return fmt.Errorf("logical id %q used twice (%s and %s)", name, prev, section)
		}
		seen[name] = section
		return nil
	}
	for _, p := range t.Parameters {
		if err := add("Parameters", p.Name); err != nil {
			return err
		}
	}
	for _, r := range t.Resources {
		if err := add("Resources", r.Name); err != nil {
			return err
		}
		if r.Type == "" {
			return fmt.Errorf("resource %q has no Type", r.Name)
		}
	}
	outs := map[string]bool{}
	for _, o := range t.Outputs {
		if outs[o.Name] {
			return fmt.Errorf("output %q defined twice", o.Name)
		}
		outs[o.Name] = true
	}
	return nil
}
