package cft

import (
	"fmt"
	"strconv"
	"strings"
)

// Evaluation is a template seen as CloudFormation would create it for given parameter values:
// conditions decided, Fn::If chosen, parameter references replaced, AWS::NoValue removed.
// What depends on resources (Ref to a resource, GetAtt, ImportValue) stays an intrinsic.
type Evaluation struct {
	Template   *Template
	Params     map[string]any
	Conditions map[string]bool
}

// DefaultPseudo are the pseudo parameter values used when the caller gives none.
var DefaultPseudo = map[string]any{
	AccountId: "123456789012", Partition: "aws", Region: "us-east-1",
	StackName: "stack", StackId: "arn:aws:cloudformation:us-east-1:123456789012:stack/stack/00000000-0000-0000-0000-000000000000",
	URLSuffix: "amazonaws.com", NotificationARNs: []any{},
}

// Evaluate decides every condition for the given parameter values; parameters not given take
// their default, and a parameter with neither is an error (it would be unresolved).
func (t *Template) Evaluate(values map[string]string) (*Evaluation, error) {
	e := &Evaluation{Template: t, Params: map[string]any{}, Conditions: map[string]bool{}}
	for k, v := range DefaultPseudo {
		e.Params[k] = v
	}
	for _, p := range t.Parameters {
		raw, given := values[p.Name]
		if !given {
			if p.Default == nil {
				return nil, fmt.Errorf("parameter %s has no value and no default", p.Name)
			}
			raw = scalarString(p.Default)
		}
		if strings.HasPrefix(p.Type, "List<") || p.Type == "CommaDelimitedList" {
			var list []any
			for _, s := range strings.Split(raw, ",") {
				if s = strings.TrimSpace(s); s != "" {
					list = append(list, s)
				}
			}
			e.Params[p.Name] = list
		} else {
			e.Params[p.Name] = raw
		}
	}
	for k, v := range values {
		if IsPseudo(k) {
			e.Params[k] = v
		}
	}
	visiting := map[string]bool{}
	var decide func(name string) (bool, error)
	decide = func(name string) (bool, error) {
		if v, done := e.Conditions[name]; done {
			return v, nil
		}
		expr, ok := t.Condition(name)
		if !ok {
			return false, fmt.Errorf("condition %s is not defined", name)
		}
		if visiting[name] {
			return false, fmt.Errorf("condition %s refers to itself", name)
		}
		visiting[name] = true
		v, err := e.condition(expr, decide)
		if err != nil {
			return false, fmt.Errorf("condition %s: %w", name, err)
		}
		e.Conditions[name] = v
		return v, nil
	}
	for _, c := range t.Conditions {
		if _, err := decide(c.Name); err != nil {
			return nil, err
		}
	}
	return e, nil
}

func scalarString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case []any:
		parts := make([]string, len(x))
		for i, p := range x {
			parts[i] = scalarString(p)
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

func (e *Evaluation) condition(expr any, decide func(string) (bool, error)) (bool, error) {
	name, arg, ok := Intrinsic(expr)
	if !ok {
		if b, isBool := expr.(bool); isBool {
			return b, nil
		}
		return false, fmt.Errorf("not a condition function: %v", expr)
	}
	args, _ := arg.([]any)
	switch name {
	case "Condition":
		s, _ := arg.(string)
		return decide(s)
	case "Fn::Equals":
		if len(args) != 2 {
			return false, fmt.Errorf("Fn::Equals takes two values")
		}
		a, b := e.resolve(args[0], decide), e.resolve(args[1], decide)
		if _, _, unresolved := Intrinsic(a); unresolved {
			return false, fmt.Errorf("Fn::Equals: %v cannot be resolved from parameters", args[0])
		}
		if _, _, unresolved := Intrinsic(b); unresolved {
			return false, fmt.Errorf("Fn::Equals: %v cannot be resolved from parameters", args[1])
		}
		return scalarString(a) == scalarString(b), nil
	case "Fn::Not":
		if len(args) != 1 {
			return false, fmt.Errorf("Fn::Not takes one condition")
		}
		v, err := e.condition(args[0], decide)
		return !v, err
	case "Fn::And", "Fn::Or":
		if len(args) < 2 || len(args) > 10 {
			return false, fmt.Errorf("%s takes 2 to 10 conditions", name)
		}
		result := name == "Fn::And"
		for _, a := range args {
			v, err := e.condition(a, decide)
			if err != nil {
				return false, err
			}
			if name == "Fn::And" {
				result = result && v
			} else {
				result = result || v
			}
		}
		return result, nil
	}
	return false, fmt.Errorf("%s is not a condition function", name)
}

// Resolve evaluates what can be evaluated from parameters and conditions.
func (e *Evaluation) Resolve(v any) any {
	return e.resolve(v, func(name string) (bool, error) {
		b, ok := e.Conditions[name]
		if !ok {
			return false, fmt.Errorf("condition %s is not defined", name)
		}
		return b, nil
	})
}

// noValue marks a value removed by AWS::NoValue during resolution.
type noValue struct{}

func (e *Evaluation) resolve(v any, decide func(string) (bool, error)) any {
	out := e.resolveInner(v, decide)
	if _, removed := out.(noValue); removed {
		return nil
	}
	return out
}

func (e *Evaluation) resolveInner(v any, decide func(string) (bool, error)) any {
	if name, arg, ok := Intrinsic(v); ok {
		return e.resolveFn(v, name, arg, decide)
	}
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			r := e.resolveInner(val, decide)
			if _, removed := r.(noValue); !removed {
				out[k] = r
			}
		}
		return out
	case []any:
		out := make([]any, 0, len(x))
		for _, val := range x {
			r := e.resolveInner(val, decide)
			if _, removed := r.(noValue); !removed {
				out = append(out, r)
			}
		}
		return out
	}
	return v
}

func (e *Evaluation) resolveFn(orig any, name string, arg any, decide func(string) (bool, error)) any {
	args, _ := arg.([]any)
	switch name {
	case "Ref":
		s, _ := arg.(string)
		if s == NoValueName {
			return noValue{}
		}
		if p, ok := e.Params[s]; ok {
			return p
		}
		return orig // a resource: known only once created
	case "Fn::If":
		if len(args) != 3 {
			return orig
		}
		cond, _ := args[0].(string)
		b, err := decide(cond)
		if err != nil {
			return orig
		}
		if b {
			return e.resolveInner(args[1], decide)
		}
		return e.resolveInner(args[2], decide)
	case "Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Condition":
		b, err := e.condition(orig, decide)
		if err != nil {
			return orig
		}
		return b
	case "Fn::Sub":
		var s string
		vars := map[string]any{}
		switch a := arg.(type) {
		case string:
			s = a
		case []any:
			if len(a) != 2 {
				return orig
			}
			s, _ = a[0].(string)
			m, _ := a[1].(map[string]any)
			for k, val := range m {
				vars[k] = e.resolveInner(val, decide)
			}
		}
		return e.sub(orig, s, vars)
	case "Fn::Join":
		if len(args) != 2 {
			return orig
		}
		delim, _ := args[0].(string)
		list, ok := e.resolveInner(args[1], decide).([]any)
		if !ok {
			return orig
		}
		parts := make([]string, 0, len(list))
		for _, p := range list {
			if _, _, unresolved := Intrinsic(p); unresolved {
				return map[string]any{name: []any{delim, list}}
			}
			parts = append(parts, scalarString(p))
		}
		return strings.Join(parts, delim)
	case "Fn::Select":
		if len(args) != 2 {
			return orig
		}
		idx, err := strconv.Atoi(scalarString(e.resolveInner(args[0], decide)))
		list, ok := e.resolveInner(args[1], decide).([]any)
		if err != nil || !ok || idx < 0 || idx >= len(list) {
			return map[string]any{name: []any{args[0], e.resolveInner(args[1], decide)}}
		}
		return list[idx]
	case "Fn::Split":
		if len(args) != 2 {
			return orig
		}
		delim, _ := args[0].(string)
		str, ok := e.resolveInner(args[1], decide).(string)
		// "${AWS::StackId}" and the like stand for values known only after deployment
		// (stacks.Explain): their parts are unknown.
		if !ok || delim == "" || (strings.HasPrefix(str, "${") && strings.HasSuffix(str, "}")) {
			return map[string]any{name: []any{delim, e.resolveInner(args[1], decide)}}
		}
		var out []any
		for _, part := range strings.Split(str, delim) {
			out = append(out, part)
		}
		return out
	case "Fn::FindInMap":
		if len(args) != 3 {
			return orig
		}
		mname := scalarString(e.resolveInner(args[0], decide))
		top, second := e.resolveInner(args[1], decide), e.resolveInner(args[2], decide)
		m := e.Template.Mapping(mname)
		if m == nil {
			return orig
		}
		if _, _, u := Intrinsic(top); u {
			return orig
		}
		if _, _, u := Intrinsic(second); u {
			return orig
		}
		if v, ok := m.Values[scalarString(top)][scalarString(second)]; ok {
			return v
		}
		return orig
	}
	// Everything else keeps its form, with resolved arguments.
	return map[string]any{name: e.resolveInner(arg, decide)}
}

func (e *Evaluation) sub(orig any, s string, vars map[string]any) any {
	var b strings.Builder
	rest := s
	for {
		i := strings.Index(rest, "${")
		if i < 0 {
			b.WriteString(rest)
			return b.String()
		}
		j := strings.Index(rest[i:], "}")
		if j < 0 {
			b.WriteString(rest)
			return b.String()
		}
		b.WriteString(rest[:i])
		name := rest[i+2 : i+j]
		rest = rest[i+j+1:]
		if strings.HasPrefix(name, "!") {
			b.WriteString("${" + name[1:] + "}")
			continue
		}
		val, ok := vars[name]
		if !ok {
			val, ok = e.Params[name]
		}
		if !ok {
			return orig // refers to a resource
		}
		if _, _, unresolved := Intrinsic(val); unresolved {
			return orig
		}
		b.WriteString(scalarString(val))
	}
}

// Active returns the resources CloudFormation would create, with every attribute resolved.
func (e *Evaluation) Active() []*Resource {
	var out []*Resource
	for _, r := range e.Template.Resources {
		if r.Condition != "" && !e.Conditions[r.Condition] {
			continue
		}
		c := *r
		c.Properties = asMap(e.Resolve(r.Properties))
		c.Metadata = asMap(e.Resolve(r.Metadata))
		c.CreationPolicy = asMap(e.Resolve(r.CreationPolicy))
		c.UpdatePolicy = asMap(e.Resolve(r.UpdatePolicy))
		out = append(out, &c)
	}
	return out
}

// ActiveOutputs returns the outputs CloudFormation would publish, resolved.
func (e *Evaluation) ActiveOutputs() []*Output {
	var out []*Output
	for _, o := range e.Template.Outputs {
		if o.Condition != "" && !e.Conditions[o.Condition] {
			continue
		}
		c := *o
		c.Value = e.Resolve(o.Value)
		c.Export = e.Resolve(o.Export)
		out = append(out, &c)
	}
	return out
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// Unresolved reports whether v still holds an intrinsic function (somewhere inside).
func Unresolved(v any) bool {
	if _, _, ok := Intrinsic(v); ok {
		return true
	}
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			if Unresolved(e) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if Unresolved(e) {
				return true
			}
		}
	}
	return false
}
