package policy

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/cft"
)

// Context is one evaluation of a template, as the rules see it.
type Context struct {
	File      string
	Stage     string // the stage whose rules apply
	Template  *cft.Template
	Eval      *cft.Evaluation
	Resources []*cft.Resource // the resources CloudFormation would create, resolved
	byName    map[string]*cft.Resource
}

func newContext(file string, t *cft.Template, ev *cft.Evaluation, stage string) *Context {
	c := &Context{File: file, Stage: stage, Template: t, Eval: ev, Resources: ev.Active(), byName: map[string]*cft.Resource{}}
	for _, r := range c.Resources {
		c.byName[r.Name] = r
	}
	return c
}

// StageSettings returns the best-practice settings of the stage evaluated.
func (c *Context) StageSettings() bestpractice.StageSettings { return bestpractice.Stage(c.Stage) }

// Resource returns an active resource by logical id, or nil.
func (c *Context) Resource(name string) *cft.Resource { return c.byName[name] }

// OfType returns the active resources of the given types, in template order.
func (c *Context) OfType(types ...string) []*cft.Resource {
	var out []*cft.Resource
	for _, r := range c.Resources {
		for _, t := range types {
			if r.Type == t {
				out = append(out, r)
				break
			}
		}
	}
	return out
}

// Target returns the active resource a value points at through Ref or Fn::GetAtt.
func (c *Context) Target(v any) *cft.Resource {
	if name, ok := cft.RefName(v); ok {
		return c.byName[name]
	}
	if name, _, ok := cft.GetAttTarget(v); ok {
		return c.byName[name]
	}
	return nil
}

// Mentions reports whether v refers to the named resource anywhere inside (Ref, GetAtt, Sub).
func Mentions(v any, name string) bool {
	if n, ok := cft.RefName(v); ok {
		return n == name
	}
	if n, _, ok := cft.GetAttTarget(v); ok {
		return n == name
	}
	if fn, arg, ok := cft.Intrinsic(v); ok && fn == "Fn::Sub" {
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
		}
		for _, ref := range cft.SubRefs(s, vars) {
			if ref == name || strings.HasPrefix(ref, name+".") {
				return true
			}
		}
		return Mentions(vars, name)
	}
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			if Mentions(e, name) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if Mentions(e, name) {
				return true
			}
		}
	}
	return false
}

// Prop returns a property by dotted path (Properties are the root) and whether it is set.
func Prop(r *cft.Resource, path string) (any, bool) {
	var cur any = r.Properties
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[k]; !ok {
			return nil, false
		}
	}
	return cur, cur != nil
}

// Why explains why a value is not a literal a rule can judge; "" when it is one.
func Why(v any) string {
	if s, ok := v.(string); ok {
		if p, isPH := placeholderParam(s); isPH {
			return fmt.Sprintf("its value comes from parameter %s, which has no default, so it cannot be shown compliant", p)
		}
		return ""
	}
	if w, ok := unsetCondition(v); ok {
		return w
	}
	if cft.Unresolved(v) {
		return fmt.Sprintf("its value %s is not known before deployment, so it cannot be shown compliant", short(v))
	}
	return ""
}

// short renders a value compactly for messages.
func short(v any) string {
	if name, arg, ok := cft.Intrinsic(v); ok {
		tag := strings.TrimPrefix(cft.Functions[name], "!")
		switch a := arg.(type) {
		case string:
			return "!" + tag + " " + a
		case []any:
			if name == "Fn::GetAtt" && len(a) == 2 {
				return fmt.Sprintf("!GetAtt %v.%v", a[0], a[1])
			}
		}
		return "!" + tag + " …"
	}
	s := fmt.Sprint(v)
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

// Bool reads a literal boolean ("true"/"false" strings count, as CloudFormation takes them).
// ok is false when v is not a literal boolean; why then says why.
func Bool(v any) (b, ok bool, why string) {
	switch x := v.(type) {
	case bool:
		return x, true, ""
	case string:
		if w := Why(x); w != "" {
			return false, false, w
		}
		switch strings.ToLower(x) {
		case "true":
			return true, true, ""
		case "false":
			return false, true, ""
		}
		return false, false, fmt.Sprintf("%q is not a boolean", x)
	case nil:
		return false, false, "it is not set"
	}
	if w := Why(v); w != "" {
		return false, false, w
	}
	return false, false, fmt.Sprintf("%s is not a boolean", short(v))
}

// Int reads a literal integer (numeric strings count).
func Int(v any) (n int, ok bool, why string) {
	switch x := v.(type) {
	case int:
		return x, true, ""
	case float64:
		return int(x), true, ""
	case string:
		if w := Why(x); w != "" {
			return 0, false, w
		}
		i, err := strconv.Atoi(strings.TrimSpace(x))
		if err != nil {
			return 0, false, fmt.Sprintf("%q is not a number", x)
		}
		return i, true, ""
	case nil:
		return 0, false, "it is not set"
	}
	if w := Why(v); w != "" {
		return 0, false, w
	}
	return 0, false, fmt.Sprintf("%s is not a number", short(v))
}

// Str reads a literal string.
func Str(v any) (s string, ok bool, why string) {
	switch x := v.(type) {
	case string:
		if w := Why(x); w != "" {
			return "", false, w
		}
		return x, true, ""
	case nil:
		return "", false, "it is not set"
	case int, float64, bool:
		return fmt.Sprint(x), true, ""
	}
	if w := Why(v); w != "" {
		return "", false, w
	}
	return "", false, fmt.Sprintf("%s is not a string", short(v))
}

// List returns v as a list: a list, or a single value as a one-element list.
func List(v any) []any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		return x
	}
	return []any{v}
}

// Strings returns the literal strings of a string or list of strings; other elements are
// skipped.
func Strings(v any) []string {
	var out []string
	for _, e := range List(v) {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// suppression is one entry of a resource's Metadata.apgstack.suppress.
type suppression struct {
	rule, reason, path string
}

// Suppression metadata keys.
const (
	metadataKey = "apgstack"
	suppressKey = "suppress"
)

// suppressionsOf reads a resource's suppressions; malformed entries are violations of
// SuppressionRule.
func suppressionsOf(r *cft.Resource) ([]suppression, []Violation) {
	md, _ := r.Metadata[metadataKey].(map[string]any)
	if md == nil {
		if _, present := r.Metadata[metadataKey]; present {
			return nil, []Violation{{r.Name, "Metadata." + metadataKey, "must be a mapping with a suppress list"}}
		}
		return nil, nil
	}
	raw, present := md[suppressKey]
	if !present {
		return nil, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, []Violation{{r.Name, "Metadata.apgstack.suppress", "must be a list of {rule, reason}"}}
	}
	var out []suppression
	var bad []Violation
	for i, e := range list {
		path := fmt.Sprintf("Metadata.apgstack.suppress[%d]", i)
		m, ok := e.(map[string]any)
		if !ok {
			bad = append(bad, Violation{r.Name, path, "must be a mapping {rule, reason}"})
			continue
		}
		rule, _ := m["rule"].(string)
		reason, _ := m["reason"].(string)
		reason = strings.TrimSpace(reason)
		switch {
		case rule == "":
			bad = append(bad, Violation{r.Name, path + ".rule", "a suppression must name the rule it suppresses"})
		case Lookup(rule) == nil:
			bad = append(bad, Violation{r.Name, path + ".rule", fmt.Sprintf("rule %q does not exist", rule)})
		case rule == SuppressionRule:
			bad = append(bad, Violation{r.Name, path + ".rule", "a suppression cannot suppress " + SuppressionRule})
		case reason == "":
			bad = append(bad, Violation{r.Name, path + ".reason", fmt.Sprintf("suppression of %s has no reason: write why the rule does not apply", rule)})
		default:
			out = append(out, suppression{rule: rule, reason: reason, path: path})
		}
	}
	return out, bad
}

// run evaluates every rule and applies the suppressions.
func (c *Context) run() []Finding {
	sup := map[string]map[string]string{} // resource -> rule -> reason
	var out []Finding
	for _, r := range c.Resources {
		list, bad := suppressionsOf(r)
		for _, s := range list {
			if sup[r.Name] == nil {
				sup[r.Name] = map[string]string{}
			}
			sup[r.Name][s.rule] = s.reason
		}
		for _, v := range bad {
			out = append(out, c.finding(Lookup(SuppressionRule), v))
		}
	}
	for _, rule := range rules {
		if rule.check == nil {
			continue
		}
		vs := rule.check(c)
		sort.SliceStable(vs, func(i, j int) bool { return vs[i].Resource < vs[j].Resource })
		for _, v := range vs {
			f := c.finding(rule, v)
			f.Reason = sup[v.Resource][rule.ID]
			out = append(out, f)
		}
	}
	return out
}

func (c *Context) finding(rule *Rule, v Violation) Finding {
	f := Finding{Resource: v.Resource, Path: v.Path, Rule: rule.ID, Severity: rule.Severity, Message: v.Message}
	if r := c.byName[v.Resource]; r != nil {
		f.Type = r.Type
	}
	return f
}
