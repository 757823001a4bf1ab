package awsfake

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/apgstack/apgstack/cft"
)

// The fake's CloudFormation, template side: parameters with their defaults, resources after
// conditions, and the evaluation of intrinsics, exports and imports.

func parseTemplate(body string) (*cft.Template, error) {
	t, err := cft.Parse([]byte(body))
	if err != nil {
		return nil, err
	}
	return t, nil
}

var subVarRE = regexp.MustCompile(`\$\{([^}!][^}]*)\}`)

// expand lists a template's resources; the Secrets Manager transform's hosted rotation becomes
// the nested stack that CloudFormation creates for it.
func expand(t *cft.Template, params map[string]string) []resDef {
	var out []resDef
	transform := false
	for _, tr := range t.Transform {
		if strings.HasPrefix(tr, "AWS::SecretsManager") {
			transform = true
		}
	}
	paramNames := map[string]bool{}
	for _, p := range t.Parameters {
		paramNames[p.Name] = true
	}
	// Conditions decide which resources exist, as CloudFormation decides them.
	resources := t.Resources
	if ev, err := t.Evaluate(params); err == nil {
		resources = ev.Active()
	}
	names := map[string]bool{}
	for _, r := range resources {
		names[r.Name] = true
	}
	for _, r := range resources {
		b, _ := json.Marshal(r.Properties)
		d := resDef{logical: r.Name, typ: r.Type, props: string(b), deletionPolicy: r.DeletionPolicy, raw: r.Properties}
		for name := range paramNames {
			if strings.Contains(d.props, `"Ref":"`+name+`"`) || strings.Contains(d.props, "${"+name+"}") {
				d.refs = append(d.refs, name)
			}
		}
		meta, _ := json.Marshal(r.Metadata)
		for _, other := range slices.Sorted(maps.Keys(names)) {
			mentioned := slices.Contains(r.DependsOn, other)
			for _, text := range []string{d.props, string(meta)} {
				mentioned = mentioned || strings.Contains(text, `"Ref":"`+other+`"`) || strings.Contains(text, `"Fn::GetAtt":["`+other+`"`) ||
					strings.Contains(text, `"Fn::GetAtt":"`+other+`.`) || strings.Contains(text, "${"+other+"}") || strings.Contains(text, "${"+other+".")
			}
			if mentioned && other != r.Name {
				d.deps = append(d.deps, other)
			}
		}
		out = append(out, d)
		if transform && r.Type == "AWS::SecretsManager::RotationSchedule" && r.Properties["HostedRotationLambda"] != nil {
			out = append(out, resDef{logical: r.Name + "RotationApplication", typ: "AWS::CloudFormation::Stack", props: "{}", transformed: true})
		}
	}
	return out
}

// pseudo adds the pseudo parameters of a stack to its parameter values.
func (f *Fake) pseudo(s *stack, params map[string]string) map[string]string {
	out := map[string]string{"AWS::StackName": s.name, "AWS::StackId": s.id, "AWS::Region": f.Region, "AWS::AccountId": f.Account}
	for k, v := range params {
		out[k] = v
	}
	return out
}

func withDefaults(t *cft.Template, given map[string]string) map[string]string {
	out := map[string]string{}
	for _, p := range t.Parameters {
		if p.Default != nil {
			out[p.Name] = fmt.Sprint(p.Default)
		}
	}
	for k, v := range given {
		out[k] = v
	}
	return out
}

// exports maps every export name of the live stacks to its value and stack.
func (f *Fake) exports() map[string][2]string {
	out := map[string][2]string{}
	for _, id := range f.byName {
		s := f.stacks[id]
		for _, o := range s.outputs {
			if o.export != "" {
				out[o.export] = [2]string{o.value, s.name}
			}
		}
	}
	return out
}

// imports lists the export names a stack's template imports, resolved with its parameters.
func (f *Fake) imports(s *stack, tpl *cft.Template, params map[string]string) []string {
	if tpl == nil {
		return nil
	}
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			if arg, ok := t["Fn::ImportValue"]; ok && len(t) == 1 {
				out = append(out, f.resolve(s, params, arg))
				return
			}
			for _, e := range t {
				walk(e)
			}
		case []any:
			for _, e := range t {
				walk(e)
			}
		}
	}
	for _, r := range tpl.Resources {
		walk(r.Properties)
	}
	for _, o := range tpl.Outputs {
		walk(o.Value)
	}
	return out
}

// resolve evaluates the intrinsics the fake understands to a string.
// condition evaluates a template condition for the stack's parameters, as CloudFormation does.
func (f *Fake) condition(s *stack, params map[string]string, name string) bool {
	if s.tpl == nil {
		return false
	}
	ev, err := s.tpl.Evaluate(params)
	if err != nil {
		return false
	}
	return ev.Conditions[name]
}

func (f *Fake) resolve(s *stack, params map[string]string, v any) string {
	vars := func(name string) string {
		switch name {
		case "AWS::StackName":
			return s.name
		case "AWS::StackId":
			return s.id
		case "AWS::Region":
			return f.Region
		case "AWS::AccountId":
			return f.Account
		case "AWS::Partition":
			return "aws"
		case "AWS::URLSuffix":
			return "amazonaws.com"
		}
		if v, ok := params[name]; ok {
			return v
		}
		if r := s.resource(name); r != nil {
			return r.physical
		}
		if res, attr, ok := strings.Cut(name, "."); ok {
			return f.getAtt(s, res, attr)
		}
		return ""
	}
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case bool, int, float64:
		return fmt.Sprint(t)
	case []any:
		parts := make([]string, len(t))
		for i, e := range t {
			parts[i] = f.resolve(s, params, e)
		}
		return strings.Join(parts, ",")
	case map[string]any:
		name, arg, ok := cft.Intrinsic(t)
		if !ok {
			return "fake"
		}
		switch name {
		case "Ref":
			if arg == cft.NoValueName {
				return ""
			}
			return vars(fmt.Sprint(arg))
		case "Fn::Sub":
			str, local := "", map[string]any{}
			switch a := arg.(type) {
			case string:
				str = a
			case []any:
				if len(a) > 0 {
					str, _ = a[0].(string)
				}
				if len(a) > 1 {
					local, _ = a[1].(map[string]any)
				}
			}
			return subVarRE.ReplaceAllStringFunc(str, func(m string) string {
				n := m[2 : len(m)-1]
				if lv, ok := local[n]; ok {
					return f.resolve(s, params, lv)
				}
				return vars(n)
			})
		case "Fn::GetAtt":
			switch a := arg.(type) {
			case []any:
				if len(a) == 2 {
					return f.getAtt(s, fmt.Sprint(a[0]), f.resolve(s, params, a[1]))
				}
			case string:
				res, attr, _ := strings.Cut(a, ".")
				return f.getAtt(s, res, attr)
			}
		case "Fn::Join":
			if a, ok := arg.([]any); ok && len(a) == 2 {
				list, _ := a[1].([]any)
				parts := make([]string, len(list))
				for i, e := range list {
					parts[i] = f.resolve(s, params, e)
				}
				return strings.Join(parts, fmt.Sprint(a[0]))
			}
		case "Fn::ImportValue":
			return f.exports()[f.resolve(s, params, arg)][0]
		case "Fn::If":
			if a, ok := arg.([]any); ok && len(a) == 3 {
				if f.condition(s, params, fmt.Sprint(a[0])) {
					return f.resolve(s, params, a[1])
				}
				return f.resolve(s, params, a[2])
			}
		case "Fn::Split":
			if a, ok := arg.([]any); ok && len(a) == 2 {
				// Lists are comma-joined strings here.
				return strings.Join(strings.Split(f.resolve(s, params, a[1]), fmt.Sprint(a[0])), ",")
			}
		case "Fn::Select":
			if a, ok := arg.([]any); ok && len(a) == 2 {
				i, _ := strconv.Atoi(fmt.Sprint(a[0]))
				parts := strings.Split(f.resolve(s, params, a[1]), ",")
				if i < len(parts) {
					return parts[i]
				}
			}
		}
	}
	return "fake"
}

func (f *Fake) getAtt(s *stack, res, attr string) string {
	r := s.resource(res)
	if r == nil {
		return ""
	}
	if c := f.clusters[r.physical]; c != nil {
		switch attr {
		case "Endpoint.Address":
			return c.endpoint
		case "ReadEndpoint.Address":
			return c.reader
		case "Endpoint.Port":
			return "5432"
		}
	}
	if attr == "Arn" {
		return fmt.Sprintf("arn:aws:fake:%s:%s:%s", f.Region, f.Account, r.physical)
	}
	return r.physical + "-" + strings.ToLower(strings.ReplaceAll(attr, ".", "-"))
}

func (f *Fake) setOutputs(s *stack) {
	s.outputs = nil
	outputs := s.tpl.Outputs
	if ev, err := s.tpl.Evaluate(f.pseudo(s, s.params)); err == nil {
		outputs = ev.ActiveOutputs()
	}
	for _, o := range outputs {
		out := output{key: o.Name, description: o.Description, value: f.resolve(s, s.params, o.Value)}
		if o.Export != nil {
			if m, ok := o.Export.(map[string]any); ok && m["Name"] != nil {
				out.export = f.resolve(s, s.params, m["Name"])
			} else {
				out.export = f.resolve(s, s.params, o.Export)
			}
		}
		s.outputs = append(s.outputs, out)
	}
}
