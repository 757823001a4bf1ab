package cft

import (
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Parse reads a template in YAML (short or long form) or JSON. Unknown top-level sections and
// malformed sections are errors; the contents of properties are kept as they are for validation.
func Parse(data []byte) (*Template, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, fmt.Errorf("parse template: empty document")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("parse template: line %d: the template must be a mapping", root.Line)
	}
	t := &Template{}
	for i := 0; i < len(root.Content); i += 2 {
		key, val := root.Content[i].Value, root.Content[i+1]
		if err := t.parseSection(key, val); err != nil {
			return nil, fmt.Errorf("parse template: %s (line %d): %w", key, val.Line, err)
		}
	}
	return t, nil
}

func (t *Template) parseSection(key string, val *yaml.Node) error {
	switch key {
	case "AWSTemplateFormatVersion":
		if val.Value != FormatVersion {
			return fmt.Errorf("unsupported version %q (only %s exists)", val.Value, FormatVersion)
		}
	case "Description":
		t.Description = val.Value
	case "Transform":
		v, err := Value(val)
		if err != nil {
			return err
		}
		switch x := v.(type) {
		case string:
			t.Transform = []string{x}
		case []any:
			for _, e := range x {
				s, ok := e.(string)
				if !ok {
					return fmt.Errorf("transforms must be names, got %T", e)
				}
				t.Transform = append(t.Transform, s)
			}
		default:
			return fmt.Errorf("want a name or a list of names, got %T", v)
		}
	case "Metadata":
		v, err := Value(val)
		if err != nil {
			return err
		}
		md, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("want a mapping")
		}
		if iface, ok := md["AWS::CloudFormation::Interface"]; ok {
			t.Interface = parseInterface(iface)
			delete(md, "AWS::CloudFormation::Interface")
		}
		if len(md) > 0 {
			t.Metadata = md
		}
	case "Parameters":
		return eachEntry(val, func(name string, v map[string]any) error {
			p, err := parseParameter(name, v)
			if err != nil {
				return err
			}
			t.Parameters = append(t.Parameters, p)
			return nil
		})
	case "Rules", "Conditions":
		if val.Kind != yaml.MappingNode {
			return fmt.Errorf("want a mapping")
		}
		for i := 0; i < len(val.Content); i += 2 {
			v, err := Value(val.Content[i+1])
			if err != nil {
				return fmt.Errorf("%s: %w", val.Content[i].Value, err)
			}
			n := &Named{Name: val.Content[i].Value, Value: v}
			if key == "Rules" {
				t.Rules = append(t.Rules, n)
			} else {
				t.Conditions = append(t.Conditions, n)
			}
		}
	case "Mappings":
		return eachEntry(val, func(name string, v map[string]any) error {
			m := &Mapping{Name: name, Values: map[string]map[string]any{}}
			for k, inner := range v {
				im, ok := inner.(map[string]any)
				if !ok {
					return fmt.Errorf("%s.%s: want a mapping", name, k)
				}
				m.Values[k] = im
			}
			t.Mappings = append(t.Mappings, m)
			return nil
		})
	case "Globals":
		v, err := Value(val)
		if err != nil {
			return err
		}
		g, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("want a mapping")
		}
		t.Globals = g
	case "Resources":
		if val.Kind != yaml.MappingNode {
			return fmt.Errorf("want a mapping")
		}
		plain := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for i := 0; i < len(val.Content); i += 2 {
			name := val.Content[i].Value
			if !strings.HasPrefix(name, "Fn::ForEach::") {
				plain.Content = append(plain.Content, val.Content[i], val.Content[i+1])
				continue
			}
			v, err := Value(val.Content[i+1])
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			t.ForEach = append(t.ForEach, &Named{Name: name, Value: v})
		}
		return eachEntry(plain, func(name string, v map[string]any) error {
			r, err := parseResource(name, v)
			if err != nil {
				return err
			}
			t.Resources = append(t.Resources, r)
			return nil
		})
	case "Outputs":
		return eachEntry(val, func(name string, v map[string]any) error {
			o := &Output{Name: name, Value: v["Value"]}
			o.Description, _ = v["Description"].(string)
			o.Condition, _ = v["Condition"].(string)
			if ex, ok := v["Export"].(map[string]any); ok {
				o.Export = ex["Name"]
			}
			if _, ok := v["Value"]; !ok {
				return fmt.Errorf("%s: an output needs a Value", name)
			}
			t.Outputs = append(t.Outputs, o)
			return nil
		})
	default:
		return fmt.Errorf("unknown top-level section %q", key)
	}
	return nil
}

func eachEntry(val *yaml.Node, fn func(name string, v map[string]any) error) error {
	if val.Kind != yaml.MappingNode {
		return fmt.Errorf("want a mapping")
	}
	for i := 0; i < len(val.Content); i += 2 {
		name := val.Content[i].Value
		v, err := Value(val.Content[i+1])
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s (line %d): want a mapping", name, val.Content[i+1].Line)
		}
		if err := fn(name, m); err != nil {
			return err
		}
	}
	return nil
}

func parseInterface(v any) *Interface {
	iface := &Interface{}
	m, _ := v.(map[string]any)
	groups, _ := m["ParameterGroups"].([]any)
	for _, g := range groups {
		gm, _ := g.(map[string]any)
		label, _ := gm["Label"].(map[string]any)
		pg := ParameterGroup{}
		pg.Label, _ = label["default"].(string)
		params, _ := gm["Parameters"].([]any)
		for _, p := range params {
			s, _ := p.(string)
			pg.Parameters = append(pg.Parameters, s)
		}
		iface.ParameterGroups = append(iface.ParameterGroups, pg)
	}
	if labels, ok := m["ParameterLabels"].(map[string]any); ok {
		iface.ParameterLabels = map[string]string{}
		for k, l := range labels {
			lm, _ := l.(map[string]any)
			iface.ParameterLabels[k], _ = lm["default"].(string)
		}
	}
	return iface
}

func parseParameter(name string, v map[string]any) (*Parameter, error) {
	p := &Parameter{Name: name, Default: v["Default"]}
	known := map[string]bool{"Type": true, "Description": true, "Default": true, "AllowedValues": true, "AllowedPattern": true,
		"MinLength": true, "MaxLength": true, "MinValue": true, "MaxValue": true, "ConstraintDescription": true, "NoEcho": true}
	for k := range v {
		if !known[k] {
			return nil, fmt.Errorf("parameter %s: unknown attribute %q", name, k)
		}
	}
	p.Type, _ = v["Type"].(string)
	if p.Type == "" {
		return nil, fmt.Errorf("parameter %s: no Type", name)
	}
	p.Description, _ = v["Description"].(string)
	p.AllowedPattern, _ = v["AllowedPattern"].(string)
	p.ConstraintDescription, _ = v["ConstraintDescription"].(string)
	if av, ok := v["AllowedValues"].([]any); ok {
		p.AllowedValues = av
	}
	for _, f := range []struct {
		key string
		dst **int
	}{{"MinLength", &p.MinLength}, {"MaxLength", &p.MaxLength}} {
		if raw, ok := v[f.key]; ok {
			n, err := toFloat(raw)
			if err != nil {
				return nil, fmt.Errorf("parameter %s: %s: %w", name, f.key, err)
			}
			*f.dst = Int(int(n))
		}
	}
	for _, f := range []struct {
		key string
		dst **float64
	}{{"MinValue", &p.MinValue}, {"MaxValue", &p.MaxValue}} {
		if raw, ok := v[f.key]; ok {
			n, err := toFloat(raw)
			if err != nil {
				return nil, fmt.Errorf("parameter %s: %s: %w", name, f.key, err)
			}
			*f.dst = Float(n)
		}
	}
	switch ne := v["NoEcho"].(type) {
	case bool:
		p.NoEcho = ne
	case string:
		p.NoEcho = strings.EqualFold(ne, "true")
	}
	return p, nil
}

func toFloat(v any) (float64, error) {
	switch x := v.(type) {
	case int:
		return float64(x), nil
	case float64:
		return x, nil
	case string:
		return strconv.ParseFloat(x, 64)
	}
	return 0, fmt.Errorf("want a number, got %T", v)
}

func parseResource(name string, v map[string]any) (*Resource, error) {
	r := &Resource{Name: name}
	for k, a := range v {
		var ok bool
		switch k {
		case "Type":
			r.Type, ok = a.(string)
		case "Condition":
			r.Condition, ok = a.(string)
		case "DependsOn":
			switch d := a.(type) {
			case string:
				r.DependsOn, ok = []string{d}, true
			case []any:
				ok = true
				for _, e := range d {
					s, isStr := e.(string)
					if !isStr {
						ok = false
					}
					r.DependsOn = append(r.DependsOn, s)
				}
			}
		case "DeletionPolicy":
			r.DeletionPolicy, ok = a.(string)
		case "UpdateReplacePolicy":
			r.UpdateReplacePolicy, ok = a.(string)
		case "CreationPolicy":
			r.CreationPolicy, ok = a.(map[string]any)
		case "UpdatePolicy":
			r.UpdatePolicy, ok = a.(map[string]any)
		case "Metadata":
			r.Metadata, ok = a.(map[string]any)
		case "Properties":
			r.Properties, ok = a.(map[string]any)
			if a == nil {
				ok = true
			}
		case "Version":
			ok = true // custom resources may carry it; CloudFormation ignores it
		default:
			return nil, fmt.Errorf("resource %s: unknown attribute %q", name, k)
		}
		if !ok {
			return nil, fmt.Errorf("resource %s: attribute %s has the wrong form (%T)", name, k, a)
		}
	}
	if r.Type == "" {
		return nil, fmt.Errorf("resource %s: no Type", name)
	}
	return r, nil
}

// Value converts a YAML node into a template value, turning short-form tags into their long form.
func Value(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		return Value(n.Content[0])
	case yaml.AliasNode:
		return Value(n.Alias)
	}
	if fnName, ok := tagFunctions[n.Tag]; ok {
		c := *n
		switch n.Kind {
		case yaml.ScalarNode:
			c.Tag = "!!str"
		case yaml.SequenceNode:
			c.Tag = "!!seq"
		case yaml.MappingNode:
			c.Tag = "!!map"
		}
		arg, err := Value(&c)
		if err != nil {
			return nil, err
		}
		if fnName == "Fn::GetAtt" {
			if s, isStr := arg.(string); isStr {
				res, attr, found := strings.Cut(s, ".")
				if !found {
					return nil, fmt.Errorf("line %d: !GetAtt %q: want Resource.Attribute", n.Line, s)
				}
				arg = []any{res, attr}
			}
		}
		return map[string]any{fnName: arg}, nil
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		return nil, fmt.Errorf("line %d: unknown tag %s", n.Line, n.Tag)
	}
	switch n.Kind {
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!int":
			if i, err := strconv.ParseInt(n.Value, 0, 64); err == nil {
				return int(i), nil
			}
			return n.Value, nil
		case "!!float":
			if f, err := strconv.ParseFloat(n.Value, 64); err == nil {
				return f, nil
			}
			return n.Value, nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err == nil {
				return b, nil
			}
			return n.Value, nil
		case "!!null":
			return nil, nil
		}
		// !!str, !!timestamp (2012-10-17), !!binary: CloudFormation reads them as strings.
		return n.Value, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, e := range n.Content {
			v, err := Value(e)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Value == "<<" {
				return nil, fmt.Errorf("line %d: YAML merge keys are not supported by CloudFormation", k.Line)
			}
			v, err := Value(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			if _, dup := out[k.Value]; dup {
				return nil, fmt.Errorf("line %d: key %q appears twice", k.Line, k.Value)
			}
			out[k.Value] = v
		}
		return out, nil
	}
	return nil, fmt.Errorf("line %d: unsupported YAML node", n.Line)
}
