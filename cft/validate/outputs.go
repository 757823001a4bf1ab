package validate

import (
	"github.com/apgstack/apgstack/cft"
)

// Outputs and their exports: values, conditions, unique export names.

// checkOutputs checks output references and conditions.
func (c *checker) checkOutputs() {
	for i, o := range c.t.Outputs {
		where := at{secOutputs, i, o.Name}
		c.entryCond = o.Condition
		if o.Condition != "" {
			c.conditionName(where, o.Condition, "Condition", "Condition")
		}
		c.refs(where, inOutput, o.Value, "Value")
		if c.valueKind(o.Value) == kindList {
			c.errorf(where, "Value", RuleOutputValue, "an output's value must be a single string, and %s is a list (join it with Fn::Join)", describe(o.Value))
		}
		if _, _, fn := cft.Intrinsic(o.Value); !fn && c.valueKind(o.Value) == kindUnknown {
			c.errorf(where, "Value", RuleOutputValue, "an output's value must be a single string, not %s", describe(o.Value))
		}
		if o.Export != nil {
			c.refs(where, inOutput, o.Export, "Export.Name")
		}
	}
	c.entryCond = ""
}

// exports reports export names used twice. Names are compared after substituting the pseudo
// parameters and keeping each parameter as a placeholder, so "${AWS::StackName}-VPC" and
// !Join ['-', [!Ref AWS::StackName, VPC]] are the same name whatever the stack is called.
// Outputs under different conditions may share a name (only one of them exists).
func (c *checker) exports() {
	// Conditions stay undecided: an export name that depends on one is not compared.
	ev := &cft.Evaluation{Template: c.t, Params: map[string]any{}, Conditions: map[string]bool{}}
	for k, v := range cft.DefaultPseudo {
		ev.Params[k] = v
	}
	ev.Params[cft.StackName] = "${AWS::StackName}"
	for _, p := range c.t.Parameters {
		ev.Params[p.Name] = "${" + p.Name + "}"
	}
	type seenExport struct {
		output, condition string
	}
	seen := map[string]seenExport{}
	for i, o := range c.t.Outputs {
		if o.Export == nil {
			continue
		}
		name, ok := ev.Resolve(o.Export).(string)
		if !ok {
			continue // depends on a resource or a condition; cannot be compared
		}
		prev, dup := seen[name]
		if !dup {
			seen[name] = seenExport{o.Name, o.Condition}
			continue
		}
		if prev.condition != "" && o.Condition != "" && prev.condition != o.Condition {
			continue
		}
		c.errorf(at{secOutputs, i, o.Name}, "Export.Name", RuleExportDuplicate, "export name %q is already exported by output %s", name, prev.output)
	}
}
