package cft

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// YAML renders the template with short-form intrinsic tags. The same template always renders to
// the same bytes: sections keep their order and map keys are sorted.
func (t *Template) YAML() ([]byte, error) {
	root, err := t.Node()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(shortForm(root)); err != nil {
		return nil, fmt.Errorf("render YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("render YAML: %w", err)
	}
	return buf.Bytes(), nil
}

// JSON renders the template in JSON (long-form intrinsics), indented by two spaces.
func (t *Template) JSON() ([]byte, error) {
	root, err := t.Node()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := writeJSON(&buf, root, ""); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// Node builds the template as an ordered YAML node tree in long form.
func (t *Template) Node() (*yaml.Node, error) {
	if err := t.Check(); err != nil {
		return nil, err
	}
	m := newMap()
	m.add("AWSTemplateFormatVersion", strNode(FormatVersion))
	if t.Description != "" {
		m.add("Description", strNode(t.Description))
	}
	switch len(t.Transform) {
	case 0:
	case 1:
		m.add("Transform", strNode(t.Transform[0]))
	default:
		m.add("Transform", mustValue(t.Transform))
	}
	if t.Interface != nil || len(t.Metadata) > 0 {
		md := newMap()
		if t.Interface != nil {
			md.add("AWS::CloudFormation::Interface", t.Interface.node())
		}
		for _, k := range slices.Sorted(maps.Keys(t.Metadata)) {
			n, err := valueNode(t.Metadata[k])
			if err != nil {
				return nil, fmt.Errorf("Metadata.%s: %w", k, err)
			}
			md.add(k, n)
		}
		m.add("Metadata", md.Node)
	}
	if t.Globals != nil {
		n, err := valueNode(t.Globals)
		if err != nil {
			return nil, fmt.Errorf("Globals: %w", err)
		}
		m.add("Globals", n)
	}
	if len(t.Parameters) > 0 {
		ps := newMap()
		for _, p := range t.Parameters {
			n, err := p.node()
			if err != nil {
				return nil, fmt.Errorf("Parameters.%s: %w", p.Name, err)
			}
			ps.add(p.Name, n)
		}
		m.add("Parameters", ps.Node)
	}
	if err := addNamed(m, "Rules", t.Rules); err != nil {
		return nil, err
	}
	if len(t.Mappings) > 0 {
		ms := newMap()
		for _, mp := range t.Mappings {
			n, err := valueNode(mapOfMaps(mp.Values))
			if err != nil {
				return nil, fmt.Errorf("Mappings.%s: %w", mp.Name, err)
			}
			ms.add(mp.Name, n)
		}
		m.add("Mappings", ms.Node)
	}
	if err := addNamed(m, "Conditions", t.Conditions); err != nil {
		return nil, err
	}
	rs := newMap()
	for _, r := range t.Resources {
		n, err := r.node()
		if err != nil {
			return nil, fmt.Errorf("Resources.%s: %w", r.Name, err)
		}
		rs.add(r.Name, n)
	}
	for _, f := range t.ForEach {
		n, err := valueNode(f.Value)
		if err != nil {
			return nil, fmt.Errorf("Resources.%s: %w", f.Name, err)
		}
		rs.add(f.Name, n)
	}
	m.add("Resources", rs.Node)
	if len(t.Outputs) > 0 {
		os := newMap()
		for _, o := range t.Outputs {
			n, err := o.node()
			if err != nil {
				return nil, fmt.Errorf("Outputs.%s: %w", o.Name, err)
			}
			os.add(o.Name, n)
		}
		m.add("Outputs", os.Node)
	}
	return m.Node, nil
}

func addNamed(m *mapNode, section string, entries []*Named) error {
	if len(entries) == 0 {
		return nil
	}
	s := newMap()
	for _, e := range entries {
		n, err := valueNode(e.Value)
		if err != nil {
			return fmt.Errorf("%s.%s: %w", section, e.Name, err)
		}
		s.add(e.Name, n)
	}
	m.add(section, s.Node)
	return nil
}

func mapOfMaps(v map[string]map[string]any) map[string]any {
	out := make(map[string]any, len(v))
	for k, inner := range v {
		out[k] = inner
	}
	return out
}

func (i *Interface) node() *yaml.Node {
	m := newMap()
	if len(i.ParameterGroups) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, g := range i.ParameterGroups {
			gm := newMap()
			label := newMap()
			label.add("default", strNode(g.Label))
			gm.add("Label", label.Node)
			gm.add("Parameters", mustValue(g.Parameters))
			seq.Content = append(seq.Content, gm.Node)
		}
		m.add("ParameterGroups", seq)
	}
	if len(i.ParameterLabels) > 0 {
		labels := newMap()
		for _, k := range slices.Sorted(maps.Keys(i.ParameterLabels)) {
			l := newMap()
			l.add("default", strNode(i.ParameterLabels[k]))
			labels.add(k, l.Node)
		}
		m.add("ParameterLabels", labels.Node)
	}
	return m.Node
}

func (p *Parameter) node() (*yaml.Node, error) {
	m := newMap()
	typ := p.Type
	if typ == "" {
		typ = "String"
	}
	m.add("Type", strNode(typ))
	if p.Description != "" {
		m.add("Description", strNode(p.Description))
	}
	if p.Default != nil {
		n, err := valueNode(p.Default)
		if err != nil {
			return nil, err
		}
		m.add("Default", n)
	}
	if len(p.AllowedValues) > 0 {
		n, err := valueNode(p.AllowedValues)
		if err != nil {
			return nil, err
		}
		m.add("AllowedValues", n)
	}
	if p.AllowedPattern != "" {
		m.add("AllowedPattern", strNode(p.AllowedPattern))
	}
	if p.MinLength != nil {
		m.add("MinLength", intNode(int64(*p.MinLength)))
	}
	if p.MaxLength != nil {
		m.add("MaxLength", intNode(int64(*p.MaxLength)))
	}
	if p.MinValue != nil {
		m.add("MinValue", floatNode(*p.MinValue))
	}
	if p.MaxValue != nil {
		m.add("MaxValue", floatNode(*p.MaxValue))
	}
	if p.ConstraintDescription != "" {
		m.add("ConstraintDescription", strNode(p.ConstraintDescription))
	}
	if p.NoEcho {
		m.add("NoEcho", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"})
	}
	return m.Node, nil
}

func (r *Resource) node() (*yaml.Node, error) {
	m := newMap()
	m.add("Type", strNode(r.Type))
	if r.Condition != "" {
		m.add("Condition", strNode(r.Condition))
	}
	switch len(r.DependsOn) {
	case 0:
	case 1:
		m.add("DependsOn", strNode(r.DependsOn[0]))
	default:
		m.add("DependsOn", mustValue(r.DependsOn))
	}
	if r.DeletionPolicy != "" {
		m.add("DeletionPolicy", strNode(r.DeletionPolicy))
	}
	if r.UpdateReplacePolicy != "" {
		m.add("UpdateReplacePolicy", strNode(r.UpdateReplacePolicy))
	}
	for _, attr := range []struct {
		name string
		v    map[string]any
	}{{"CreationPolicy", r.CreationPolicy}, {"UpdatePolicy", r.UpdatePolicy}, {"Metadata", r.Metadata}, {"Properties", r.Properties}} {
		if attr.v == nil {
			continue
		}
		n, err := valueNode(attr.v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", attr.name, err)
		}
		m.add(attr.name, n)
	}
	return m.Node, nil
}

func (o *Output) node() (*yaml.Node, error) {
	m := newMap()
	if o.Description != "" {
		m.add("Description", strNode(o.Description))
	}
	if o.Condition != "" {
		m.add("Condition", strNode(o.Condition))
	}
	v, err := valueNode(o.Value)
	if err != nil {
		return nil, err
	}
	m.add("Value", v)
	if o.Export != nil {
		e, err := valueNode(o.Export)
		if err != nil {
			return nil, err
		}
		ex := newMap()
		ex.add("Name", e)
		m.add("Export", ex.Node)
	}
	return m.Node, nil
}

type mapNode struct{ *yaml.Node }

func newMap() *mapNode { return &mapNode{&yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}} }

func (m *mapNode) add(key string, v *yaml.Node) {
	m.Content = append(m.Content, strNode(key), v)
}

func strNode(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	switch {
	case strings.Contains(s, "\n"):
		n.Style = yaml.LiteralStyle
	case s == "" || strings.Contains(s, "${") || yaml11Special(s):
		// Quoted as CloudFormation authors write them ('' and '${AWS::StackName}-VPC'), and
		// words that CloudFormation's YAML 1.1 reader would take for booleans or numbers.
		n.Style = yaml.SingleQuotedStyle
	}
	return n
}

// yaml11Special reports plain scalars that YAML 1.1 (CloudFormation's reader) resolves to
// something other than a string, while YAML 1.2 (our encoder) would leave them unquoted.
func yaml11Special(s string) bool {
	switch strings.ToLower(s) {
	case "y", "n", "yes", "no", "on", "off":
		return true
	}
	return sexagesimal.MatchString(s)
}

var sexagesimal = regexp.MustCompile(`^[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?$`)

func intNode(i int64) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(i, 10)}
}

func floatNode(f float64) *yaml.Node {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return intNode(int64(f))
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: strconv.FormatFloat(f, 'g', -1, 64)}
}

func mustValue(v any) *yaml.Node {
	n, err := valueNode(v)
	if err != nil {
		panic(err)
	}
	return n
}

// valueNode converts a template value to a long-form node.
func valueNode(v any) (*yaml.Node, error) {
	switch x := v.(type) {
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
	case *yaml.Node:
		return x, nil
	case string:
		return strNode(x), nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(x)}, nil
	case int:
		return intNode(int64(x)), nil
	case int64:
		return intNode(x), nil
	case float64:
		return floatNode(x), nil
	case []any:
		seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for i, e := range x {
			n, err := valueNode(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			seq.Content = append(seq.Content, n)
		}
		return seq, nil
	case map[string]any:
		m := newMap()
		for _, k := range slices.Sorted(maps.Keys(x)) {
			n, err := valueNode(x[k])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			m.add(k, n)
		}
		return m.Node, nil
	}
	// Typed slices and maps ([]string, []map[string]any, map[string]string, ...).
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = rv.Index(i).Interface()
		}
		return valueNode(out)
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			break
		}
		out := make(map[string]any, rv.Len())
		iter := rv.MapRange()
		for iter.Next() {
			out[iter.Key().String()] = iter.Value().Interface()
		}
		return valueNode(out)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return intNode(rv.Convert(reflect.TypeOf(int64(0))).Int()), nil
	case reflect.Float32:
		return floatNode(rv.Float()), nil
	case reflect.String:
		return strNode(rv.String()), nil
	}
	return nil, fmt.Errorf("unsupported template value of type %T", v)
}

// shortForm rewrites long-form intrinsic mappings into short-form tagged nodes. It returns a new
// tree and leaves the input untouched.
func shortForm(n *yaml.Node) *yaml.Node {
	switch n.Kind {
	case yaml.SequenceNode:
		c := *n
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, e := range n.Content {
			c.Content[i] = shortForm(e)
		}
		return &c
	case yaml.MappingNode:
		if len(n.Content) == 2 {
			if tag, ok := Functions[n.Content[0].Value]; ok && n.Content[0].Tag == "!!str" {
				if s := shortCall(n.Content[0].Value, tag, n.Content[1]); s != nil {
					return s
				}
			}
		}
		c := *n
		c.Content = make([]*yaml.Node, len(n.Content))
		for i := 0; i < len(n.Content); i += 2 {
			c.Content[i] = n.Content[i]
			c.Content[i+1] = shortForm(n.Content[i+1])
		}
		return &c
	}
	return n
}

func shortCall(name, tag string, arg *yaml.Node) *yaml.Node {
	if name == "Condition" && arg.Kind != yaml.ScalarNode {
		return nil // a property that happens to be called Condition
	}
	if name == "Fn::GetAtt" && arg.Kind == yaml.SequenceNode && len(arg.Content) == 2 &&
		arg.Content[0].Kind == yaml.ScalarNode && arg.Content[1].Kind == yaml.ScalarNode {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: arg.Content[0].Value + "." + arg.Content[1].Value}
	}
	a := shortForm(arg)
	if a.Kind == yaml.ScalarNode && strings.HasPrefix(a.Tag, "!") && !strings.HasPrefix(a.Tag, "!!") ||
		a.Kind != yaml.ScalarNode && strings.HasPrefix(a.Tag, "!") && !strings.HasPrefix(a.Tag, "!!") {
		// A node carries one tag: an intrinsic directly inside another stays in long form.
		inner := newMap()
		inner.Tag = tag
		inner.add(tagFunctions[a.Tag], untag(a))
		return inner.Node
	}
	c := *a
	c.Tag = tag
	if c.Kind == yaml.SequenceNode && simpleSeq(&c) {
		c.Style = yaml.FlowStyle
	}
	return &c
}

// untag turns a short-form node back into the argument of its long form.
func untag(n *yaml.Node) *yaml.Node {
	c := *n
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!GetAtt" {
			r, attr, _ := strings.Cut(n.Value, ".")
			return &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle, Content: []*yaml.Node{strNode(r), strNode(attr)}}
		}
		c.Tag = "!!str"
	case yaml.SequenceNode:
		c.Tag = "!!seq"
	case yaml.MappingNode:
		c.Tag = "!!map"
	}
	return &c
}

// simpleSeq says whether a sequence reads well on one line: scalars only, short.
func simpleSeq(n *yaml.Node) bool {
	total := 0
	for _, e := range n.Content {
		if e.Kind != yaml.ScalarNode || strings.Contains(e.Value, "\n") {
			return false
		}
		total += len(e.Value) + len(e.Tag) + 4
	}
	return total <= 70
}

// writeJSON writes a long-form node as indented JSON, keeping mapping order.
func writeJSON(buf *bytes.Buffer, n *yaml.Node, indent string) error {
	switch n.Kind {
	case yaml.DocumentNode:
		return writeJSON(buf, n.Content[0], indent)
	case yaml.MappingNode:
		if len(n.Content) == 0 {
			buf.WriteString("{}")
			return nil
		}
		buf.WriteString("{\n")
		inner := indent + "  "
		for i := 0; i < len(n.Content); i += 2 {
			buf.WriteString(inner)
			writeJSONString(buf, n.Content[i].Value)
			buf.WriteString(": ")
			if err := writeJSON(buf, n.Content[i+1], inner); err != nil {
				return err
			}
			if i+2 < len(n.Content) {
				buf.WriteByte(',')
			}
			buf.WriteByte('\n')
		}
		buf.WriteString(indent + "}")
	case yaml.SequenceNode:
		if len(n.Content) == 0 {
			buf.WriteString("[]")
			return nil
		}
		buf.WriteString("[\n")
		inner := indent + "  "
		for i, e := range n.Content {
			buf.WriteString(inner)
			if err := writeJSON(buf, e, inner); err != nil {
				return err
			}
			if i+1 < len(n.Content) {
				buf.WriteByte(',')
			}
			buf.WriteByte('\n')
		}
		buf.WriteString(indent + "]")
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!int", "!!float", "!!bool":
			buf.WriteString(n.Value)
		case "!!null":
			buf.WriteString("null")
		default:
			writeJSONString(buf, n.Value)
		}
	default:
		return fmt.Errorf("render JSON: unexpected node kind %v", n.Kind)
	}
	return nil
}

func writeJSONString(buf *bytes.Buffer, s string) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	buf.Write(bytes.TrimRight(b.Bytes(), "\n"))
}
