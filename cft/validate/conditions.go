package validate

import (
	"fmt"
	"strings"

	"github.com/apgstack/apgstack/cft"
)

// Conditions, mappings and rules: names resolve, condition functions are well formed.

// conditions checks the Conditions section: each body is a condition function, names exist, they
// refer only to parameters, and no condition depends on itself.
func (c *checker) conditions() {
	graph := map[string][]string{}
	for i, cd := range c.t.Conditions {
		where := at{secConditions, i, cd.Name}
		c.conditionExpr(where, cd.Value, "", true)
		c.refs(where, inCondition, cd.Value, "")
		graph[cd.Name] = conditionNames(cd.Value)
	}
	// Cycles among conditions, each reported once.
	order := make([]string, len(c.t.Conditions))
	for i, cd := range c.t.Conditions {
		order[i] = cd.Name
	}
	reported := map[string]bool{}
	findCycles(order, graph, func(cycle []string) {
		if !reported[cycle[0]] {
			reported[cycle[0]] = true
			m := cycle[0]
			c.errorf(at{secConditions, c.conditionIndex(m), m}, "", RuleConditionCycle, "conditions refer to each other in a circle: %s", strings.Join(cycle, " -> "))
		}
	})
}

func (c *checker) conditionIndex(name string) int {
	for i, cd := range c.t.Conditions {
		if cd.Name == name {
			return i
		}
	}
	return 0
}

// conditionExpr checks that v is a condition function; top is true for a condition's body.
func (c *checker) conditionExpr(where at, v any, path string, top bool) {
	name, arg, ok := cft.Intrinsic(v)
	if !ok {
		if _, isBool := v.(bool); isBool && !top {
			return
		}
		c.errorf(where, path, RuleConditionForm, "a condition must be Fn::Equals, Fn::Not, Fn::And, Fn::Or or Condition, got %s", describe(v))
		return
	}
	args, _ := arg.([]any)
	p := join(path, name)
	switch name {
	case "Fn::Equals":
		if len(args) != 2 {
			c.errorf(where, p, RuleConditionForm, "Fn::Equals takes two values, got %s", describe(arg))
		}
	case "Fn::Not":
		if len(args) != 1 {
			c.errorf(where, p, RuleConditionForm, "Fn::Not takes a list of one condition, got %s", describe(arg))
			return
		}
		c.conditionExpr(where, args[0], p+"[0]", false)
	case "Fn::And", "Fn::Or":
		if len(args) < 2 || len(args) > 10 {
			c.errorf(where, p, RuleConditionForm, "%s takes 2 to 10 conditions, got %s", name, describe(arg))
		}
		for i, a := range args {
			c.conditionExpr(where, a, fmt.Sprintf("%s[%d]", p, i), false)
		}
	case "Condition":
		// Checked by refs (conditionName).
	default:
		c.errorf(where, path, RuleConditionForm, "%s is not a condition function (want Fn::Equals, Fn::Not, Fn::And, Fn::Or or Condition)", name)
	}
}

// conditionNames lists the conditions named inside a condition body.
func conditionNames(v any) []string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		if name, arg, ok := cft.Intrinsic(v); ok {
			if s, isStr := arg.(string); name == "Condition" && isStr {
				out = append(out, s)
				return
			}
			walk(arg)
			return
		}
		if l, ok := v.([]any); ok {
			for _, e := range l {
				walk(e)
			}
		}
	}
	walk(v)
	return out
}

// conditionName checks that a named condition exists.
func (c *checker) conditionName(where at, name, what, path string) {
	if !c.conds[name] {
		c.errorf(where, path, RuleConditionTarget, "%s: no condition is called %q", what, name)
	}
}

// mappingsAndRules checks the Rules section's references.
func (c *checker) mappingsAndRules() {
	for i, r := range c.t.Rules {
		c.refs(at{secRules, i, r.Name}, inRule, r.Value, "")
	}
	for i, m := range c.t.Mappings {
		for top, inner := range m.Values {
			if inner == nil {
				c.errorf(at{secMappings, i, m.Name}, top, RuleIntrinsicForm, "mapping entry %s is empty", top)
			}
		}
	}
}
