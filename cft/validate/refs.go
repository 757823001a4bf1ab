package validate

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/apgstack/apgstack/cft"
	"github.com/apgstack/apgstack/cft/schema"
)

// scope says what a value may refer to.
type scope int

const (
	inResource  scope = iota // parameters, resources, pseudo parameters, conditions via Fn::If
	inOutput                 // the same
	inCondition              // parameters and pseudo parameters only; conditions by name
	inRule                   // parameters and pseudo parameters only
)

// refs checks every intrinsic function under v and, for a resource, returns the resources it
// depends on (by Ref, Fn::GetAtt or Fn::Sub), each once, in order of appearance.
func (c *checker) refs(where at, sc scope, v any, path string) []string {
	var deps []string
	seen := map[string]bool{}
	dep := func(name string) {
		if _, isRes := c.resources[name]; isRes && !seen[name] {
			seen[name] = true
			deps = append(deps, name)
		}
	}
	var walk func(v any, path string, guarded bool)
	walk = func(v any, path string, guarded bool) {
		if name, arg, ok := cft.Intrinsic(v); ok {
			c.guarded = guarded
			c.intrinsic(where, sc, name, arg, path, dep)
			if args, isList := arg.([]any); name == "Fn::If" && isList && len(args) == 3 {
				// A reference inside Fn::If is taken to be guarded by its condition.
				for i, a := range args {
					walk(a, fmt.Sprintf("%s.%s[%d]", path, name, i), guarded || i > 0)
				}
				return
			}
			walk(arg, join(path, name), guarded)
			return
		}
		switch x := v.(type) {
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(x)) {
				walk(x[k], join(path, k), guarded)
			}
		case []any:
			for i, e := range x {
				walk(e, fmt.Sprintf("%s[%d]", path, i), guarded)
			}
		}
	}
	walk(v, path, false)
	return deps
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// intrinsic checks one function call (not its nested calls, which refs walks to).
func (c *checker) intrinsic(where at, sc scope, name string, arg any, path string, dep func(string)) {
	args, isList := arg.([]any)
	switch name {
	case "Ref":
		target, ok := arg.(string)
		if !ok {
			c.errorf(where, path, RuleIntrinsicForm, "Ref takes a logical id or pseudo parameter name, got %s", describe(arg))
			return
		}
		c.ref(where, sc, target, "Ref "+target, path, dep)
	case "Fn::GetAtt":
		res, attr, ok := cft.GetAttTarget(map[string]any{name: arg})
		if !ok {
			c.errorf(where, path, RuleIntrinsicForm, "Fn::GetAtt takes [LogicalId, Attribute], got %s", describe(arg))
			return
		}
		c.getAtt(where, sc, res, attr, "Fn::GetAtt "+res+"."+attr, path, dep)
	case "Fn::Sub":
		var s string
		var vars map[string]any
		switch a := arg.(type) {
		case string:
			s = a
		case []any:
			if len(a) == 2 {
				s, _ = a[0].(string)
				vars, _ = a[1].(map[string]any)
			}
			if len(a) != 2 || vars == nil {
				if _, _, fn := cft.Intrinsic(a[0]); len(a) == 2 && fn {
					return // the string itself is computed; nothing to check
				}
				c.errorf(where, path, RuleIntrinsicForm, "Fn::Sub takes a string or [string, {variables}], got %s", describe(arg))
				return
			}
		default:
			c.errorf(where, path, RuleIntrinsicForm, "Fn::Sub takes a string or [string, {variables}], got %s", describe(arg))
			return
		}
		for _, ref := range cft.SubRefs(s, vars) {
			ref = strings.TrimSpace(ref)
			if res, attr, dotted := strings.Cut(ref, "."); dotted && !cft.IsPseudo(ref) {
				c.getAtt(where, sc, res, attr, "${"+ref+"} in Fn::Sub", path, dep)
			} else {
				c.ref(where, sc, ref, "${"+ref+"} in Fn::Sub", path, dep)
				if c.resultKind("Ref", ref) == kindList {
					c.errorf(where, path, RuleIntrinsicForm, "${%s} in Fn::Sub: %s is a list; Fn::Sub takes single values (use Fn::Join)", ref, ref)
				}
			}
		}
	case "Fn::If":
		if sc == inCondition {
			c.errorf(where, path, RuleConditionForm, "Fn::If cannot be used inside a condition")
			return
		}
		if !isList || len(args) != 3 {
			c.errorf(where, path, RuleIntrinsicForm, "Fn::If takes [ConditionName, ValueIfTrue, ValueIfFalse], got %s", describe(arg))
			return
		}
		cond, ok := args[0].(string)
		if !ok {
			c.errorf(where, path, RuleIntrinsicForm, "Fn::If's first argument must be a condition name, got %s", describe(args[0]))
			return
		}
		c.conditionName(where, cond, "Fn::If", path)
	case "Condition":
		cond, ok := arg.(string)
		if !ok {
			c.errorf(where, path, RuleIntrinsicForm, "Condition takes a condition name, got %s", describe(arg))
			return
		}
		if sc == inCondition || sc == inRule {
			c.conditionName(where, cond, "Condition", path)
		}
	case "Fn::FindInMap":
		c.findInMap(where, args, isList, path)
	case "Fn::Join":
		if !isList || len(args) != 2 {
			c.errorf(where, path, RuleIntrinsicForm, "Fn::Join takes [delimiter, [values]], got %s", describe(arg))
			return
		}
		if _, ok := args[0].(string); !ok {
			c.errorf(where, path, RuleIntrinsicForm, "Fn::Join's delimiter must be a string, got %s", describe(args[0]))
		}
		if c.valueKind(args[1]) == kindScalar {
			c.errorf(where, path, RuleIntrinsicForm, "Fn::Join's second argument must be a list, got %s (%s)", describe(args[1]), kindScalar)
		}
	case "Fn::Select":
		if !isList || len(args) != 2 {
			c.errorf(where, path, RuleIntrinsicForm, "Fn::Select takes [index, list], got %s", describe(arg))
			return
		}
		if c.valueKind(args[1]) == kindScalar {
			c.errorf(where, path, RuleIntrinsicForm, "Fn::Select's second argument must be a list, got %s (%s)", describe(args[1]), kindScalar)
		}
	case "Fn::GetAZs", "Fn::ImportValue", "Fn::Base64", "Fn::Cidr", "Fn::Split":
		if sc == inCondition && name != "Fn::Split" && name != "Fn::Base64" {
			c.errorf(where, path, RuleConditionRef, "%s cannot be used inside a condition", name)
		}
	}
}

// ref checks a Ref (or ${Name}) target.
func (c *checker) ref(where at, sc scope, target, what, path string, dep func(string)) {
	if cft.IsPseudo(target) {
		return
	}
	if _, ok := c.params[target]; ok {
		return
	}
	if _, ok := c.resources[target]; ok {
		if sc == inCondition || sc == inRule {
			c.errorf(where, path, RuleConditionRef, "%s: a condition or rule can refer only to parameters, and %s is a resource", what, target)
			return
		}
		dep(target)
		c.conditional(where, target, what, path)
		return
	}
	c.errorf(where, path, RuleRefTarget, "%s: no parameter, resource or pseudo parameter is called %q", what, target)
}

// conditional warns about an unconditional reference to a resource that exists only under a
// condition: when the condition is false, CloudFormation fails with "Unresolved resource
// dependencies". References inside Fn::If, and from entries with a condition of their own, are
// left alone (whether one condition implies another is not worked out here).
func (c *checker) conditional(where at, target, what, path string) {
	r := c.resources[target]
	if r == nil || r.Condition == "" || c.guarded || c.entryCond != "" {
		return
	}
	c.warnf(where, path, RuleConditionalRef, "%s: %s exists only when condition %s is true; refer to it inside Fn::If [%s, ...] or give this entry the same condition", what, target, r.Condition, r.Condition)
}

// getAtt checks a GetAtt (or ${Res.Attr}) target and, when the type's schema is known, its
// attribute.
func (c *checker) getAtt(where at, sc scope, res, attr, what, path string, dep func(string)) {
	r, ok := c.resources[res]
	if !ok {
		c.errorf(where, path, RuleGetAttTarget, "%s: no resource is called %q", what, res)
		return
	}
	if sc == inCondition || sc == inRule {
		c.errorf(where, path, RuleConditionRef, "%s: a condition or rule can refer only to parameters", what)
		return
	}
	dep(res)
	c.conditional(where, res, what, path)
	if attr == "" || strings.HasPrefix(r.Type, "Custom::") || r.Type == "AWS::CloudFormation::CustomResource" ||
		r.Type == "AWS::CloudFormation::Stack" && strings.HasPrefix(attr, "Outputs.") {
		return
	}
	s, err := schema.Lookup(r.Type)
	if err != nil {
		return // unknown types are reported once, on the resource
	}
	if !hasAttribute(s, attr) {
		c.errorf(where, path, RuleGetAttAttribute, "%s: %s has no attribute %q (its schema's attributes: %s)", what, r.Type, attr, strings.Join(attributes(s), ", "))
	}
}

// hasAttribute reports whether Fn::GetAtt can return attr: one of the type's read-only
// properties (its return values, nested ones written A.B), or — as CloudFormation also accepts —
// a top-level property, or a key under a property that is a map.
func hasAttribute(s *schema.Schema, attr string) bool {
	// Nested attributes appear both as /properties/A/B and as /properties/A.B.
	ptr := "/properties/" + strings.ReplaceAll(attr, ".", "/")
	if slices.Contains(s.ReadOnlyProperties, ptr) || slices.Contains(s.ReadOnlyProperties, "/properties/"+attr) {
		return true
	}
	first, rest, nested := strings.Cut(attr, ".")
	n, ok := s.Properties[first]
	if !ok {
		return false
	}
	for nested {
		n = s.Resolve(n)
		if n == nil || len(n.Properties) == 0 && !n.ClosedObject() {
			return true // a map, or a node the schema leaves open: any key
		}
		var key string
		key, rest, nested = strings.Cut(rest, ".")
		if n, ok = n.Properties[key]; !ok {
			return false
		}
	}
	return true
}

// attributes lists a type's return values (its read-only properties) as GetAtt names them.
func attributes(s *schema.Schema) []string {
	var out []string
	for _, p := range s.ReadOnlyProperties {
		if name, ok := strings.CutPrefix(p, "/properties/"); ok {
			out = append(out, strings.ReplaceAll(name, "/", "."))
		}
	}
	if len(out) == 0 {
		return []string{"none"}
	}
	return out
}

// findInMap checks the mapping and, where they are literal, its keys.
func (c *checker) findInMap(where at, args []any, isList bool, path string) {
	if !isList || len(args) < 3 || len(args) > 4 {
		c.errorf(where, path, RuleIntrinsicForm, "Fn::FindInMap takes [MapName, TopLevelKey, SecondLevelKey], got %d arguments", len(args))
		return
	}
	name, ok := args[0].(string)
	if !ok {
		return // computed map name
	}
	m := c.t.Mapping(name)
	if m == nil {
		c.errorf(where, path, RuleFindInMapTarget, "Fn::FindInMap: no mapping is called %q", name)
		return
	}
	if len(args) == 4 {
		return // AWS::LanguageExtensions' DefaultValue: a missing key is not an error
	}
	top, topLit := literal(args[1])
	second, secondLit := literal(args[2])
	if topLit {
		inner, ok := m.Values[top]
		if !ok {
			c.errorf(where, path, RuleFindInMapTarget, "Fn::FindInMap: mapping %s has no top-level key %q (has %s)", name, top, strings.Join(slices.Sorted(maps.Keys(m.Values)), ", "))
			return
		}
		if _, ok := inner[second]; secondLit && !ok {
			c.errorf(where, path, RuleFindInMapTarget, "Fn::FindInMap: mapping %s.%s has no key %q (has %s)", name, top, second, strings.Join(slices.Sorted(maps.Keys(inner)), ", "))
		}
		return
	}
	if secondLit {
		for _, inner := range m.Values {
			if _, ok := inner[second]; ok {
				return
			}
		}
		c.errorf(where, path, RuleFindInMapTarget, "Fn::FindInMap: no entry of mapping %s has a key %q", name, second)
	}
}

// literal returns a scalar as CloudFormation would read it as a string.
func literal(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case int, float64, bool:
		return scalar(x), true
	}
	return "", false
}

// describe shows a value briefly in a message.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "nothing"
	case string:
		if len(x) > 60 {
			x = x[:57] + "..."
		}
		return fmt.Sprintf("the string %q", x)
	case bool:
		return fmt.Sprintf("the boolean %v", x)
	case int, float64:
		return "the number " + scalar(x)
	case []any:
		return fmt.Sprintf("a list of %d", len(x))
	case map[string]any:
		if name, _, ok := cft.Intrinsic(x); ok {
			return name
		}
		keys := slices.Sorted(maps.Keys(x))
		if len(keys) > 4 {
			keys = append(keys[:4], "...")
		}
		return "an object with " + strings.Join(keys, ", ")
	}
	return fmt.Sprintf("%T", v)
}
