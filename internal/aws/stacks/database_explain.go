package stacks

import (
	"fmt"
	"slices"

	"github.com/apgstack/apgstack/cft"
)

// Effective is what CloudFormation would create for a stack with its configured parameter
// values: conditions decided, Fn::If chosen, parameters and mappings filled in. What only exists
// once resources exist (their ids, attributes, imports) stays an intrinsic.
type Effective struct {
	Stack      *Stack
	Conditions map[string]bool
	Resources  []*cft.Resource
	Outputs    []*cft.Output
}

// Explain evaluates a stack's template for its parameter values; the stack's name is the
// AWS::StackName the template sees.
func Explain(s *Stack) (*Effective, error) {
	values := s.ParameterMap()
	values[cft.StackName] = s.Name
	// The account, Region and partition are not known before deployment: they stay symbolic
	// (arn:${AWS::Partition}:iam::${AWS::AccountId}:root) rather than taking made-up values.
	for _, p := range []string{cft.AccountId, cft.Region, cft.Partition, cft.URLSuffix, cft.StackId} {
		values[p] = "${" + p + "}"
	}
	ev, err := s.Template.Evaluate(values)
	if err != nil {
		return nil, fmt.Errorf("evaluate %s stack: %w", s.Kind, err)
	}
	active := ev.Active()
	names := make(map[string]bool, len(active))
	for _, r := range active {
		names[r.Name] = true
	}
	for _, r := range active {
		// Resolving turns absent attributes into empty maps; keep them absent.
		orig := s.Template.Resource(r.Name)
		if orig.Metadata == nil {
			r.Metadata = nil
		}
		if orig.CreationPolicy == nil {
			r.CreationPolicy = nil
		}
		if orig.UpdatePolicy == nil {
			r.UpdatePolicy = nil
		}
		// A created resource carries no condition any more, and waits only for created ones.
		r.Condition = ""
		r.DependsOn = slices.DeleteFunc(slices.Clone(r.DependsOn), func(d string) bool { return !names[d] })
	}
	outs := ev.ActiveOutputs()
	for _, o := range outs {
		o.Condition = ""
	}
	return &Effective{Stack: s, Conditions: ev.Conditions, Resources: active, Outputs: outs}, nil
}

// Template renders the effective resources and outputs as a template (for reading and golden
// files; it is not meant to be deployed).
func (e *Effective) Template() *cft.Template {
	t := cft.New(fmt.Sprintf("Effective %s stack %s: the resources CloudFormation creates for the configured parameter values", e.Stack.Kind, e.Stack.Name))
	values := map[string]any{}
	for _, p := range e.Stack.Parameters {
		values[p.ParameterKey] = p.ParameterValue
	}
	t.Metadata = map[string]any{"ParameterValues": values}
	t.Resources = e.Resources
	t.Outputs = e.Outputs
	return t
}

// Resource returns the named effective resource or nil.
func (e *Effective) Resource(name string) *cft.Resource {
	for _, r := range e.Resources {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// OfType returns the effective resources of one type.
func (e *Effective) OfType(typ string) []*cft.Resource {
	var out []*cft.Resource
	for _, r := range e.Resources {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}
