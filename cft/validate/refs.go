package validate

import (
	"fmt"
	"sort"
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
			for _, k := range sortedKeys(x) {
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

// kind is what an intrinsic function gives, as far as it is known without deploying.
type kind int

const (
	kindUnknown kind = iota
	kindScalar       // a string (or a number)
	kindList         // a list of strings
)

func (k kind) String() string {
	switch k {
	case kindScalar:
		return "a single value"
	case kindList:
		return "a list"
	}
	return "a value"
}

// resultKind tells what a function call gives.
func (c *checker) resultKind(name string, arg any) kind {
	switch name {
	case "Ref":
		target, _ := arg.(string)
		if target == cft.NotificationARNs {
			return kindList
		}
		if cft.IsPseudo(target) {
			return kindScalar
		}
		if p, ok := c.params[target]; ok {
			if valid, list := parameterType(p.Type); valid && list {
				return kindList
			} else if valid {
				return kindScalar
			}
			return kindUnknown
		}
		if _, ok := c.resources[target]; ok {
			return kindScalar // a resource's Ref is its physical id
		}
	case "Fn::Join", "Fn::Sub", "Fn::Base64", "Fn::ImportValue", "Fn::ToJsonString", "Fn::Length":
		return kindScalar
	case "Fn::GetAZs", "Fn::Split", "Fn::Cidr":
		return kindList
	}
	return kindUnknown
}

// valueKind is resultKind for any value: literal lists and scalars included.
func (c *checker) valueKind(v any) kind {
	if name, arg, ok := cft.Intrinsic(v); ok {
		return c.resultKind(name, arg)
	}
	switch v.(type) {
	case []any:
		return kindList
	case string, int, float64, bool:
		return kindScalar
	}
	return kindUnknown
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
		c.warnf(where, path, RuleGetAttAttribute, "%s: the schema of %s does not list an attribute %q", what, r.Type, attr)
	}
}

// hasAttribute reports whether attr is one of the type's read-only properties (its return values)
// or a property.
func hasAttribute(s *schema.Schema, attr string) bool {
	// Nested attributes appear both as /properties/A/B and as /properties/A.B.
	ptr := "/properties/" + strings.ReplaceAll(attr, ".", "/")
	for _, p := range s.ReadOnlyProperties {
		if p == ptr || p == "/properties/"+attr {
			return true
		}
	}
	first, _, _ := strings.Cut(attr, ".")
	_, ok := s.Properties[first]
	return ok
}

// conditionName checks that a named condition exists.
func (c *checker) conditionName(where at, name, what, path string) {
	if !c.conds[name] {
		c.errorf(where, path, RuleConditionTarget, "%s: no condition is called %q", what, name)
	}
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
			c.errorf(where, path, RuleFindInMapTarget, "Fn::FindInMap: mapping %s has no top-level key %q (has %s)", name, top, strings.Join(sortedKeys(m.Values), ", "))
			return
		}
		if _, ok := inner[second]; secondLit && !ok {
			c.errorf(where, path, RuleFindInMapTarget, "Fn::FindInMap: mapping %s.%s has no key %q (has %s)", name, top, second, strings.Join(sortedKeys(inner), ", "))
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

func cycleFrom(stack []string, start string) []string {
	for i, n := range stack {
		if n == start {
			out := append([]string{}, stack[i:]...)
			return append(out, start)
		}
	}
	return []string{start, start}
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

// cycles reports every circle of resources that depend on each other, once, with its path.
func (c *checker) cycles() {
	order := make([]string, len(c.t.Resources))
	for i, r := range c.t.Resources {
		order[i] = r.Name
	}
	inCycle := map[string]bool{}
	findCycles(order, c.graph, func(cycle []string) {
		fresh := false
		for _, x := range cycle {
			if !inCycle[x] {
				fresh = true
			}
			inCycle[x] = true
		}
		if fresh {
			m := cycle[0]
			c.errorf(at{secResources, c.resourceIndex(m), m}, "", RuleCycle, "circular dependency: %s", strings.Join(cycle, " -> "))
		}
	})
}

// findCycles walks graph depth first from each node of order and calls found with the path of
// every back edge: a circle that starts and ends at the same node.
func findCycles(order []string, graph map[string][]string, found func(cycle []string)) {
	state := map[string]int{} // 0 new, 1 on the stack, 2 done
	var stack []string
	var visit func(n string)
	visit = func(n string) {
		state[n] = 1
		stack = append(stack, n)
		for _, m := range graph[n] {
			switch state[m] {
			case 0:
				visit(m)
			case 1:
				found(cycleFrom(stack, m))
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = 2
	}
	for _, n := range order {
		if state[n] == 0 {
			visit(n)
		}
	}
}

func (c *checker) resourceIndex(name string) int {
	for i, r := range c.t.Resources {
		if r.Name == name {
			return i
		}
	}
	return 0
}

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

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
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
		keys := sortedKeys(x)
		if len(keys) > 4 {
			keys = append(keys[:4], "...")
		}
		return "an object with " + strings.Join(keys, ", ")
	}
	return fmt.Sprintf("%T", v)
}
