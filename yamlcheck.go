package apgstack

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// checkYAML walks a configuration document against the Config type before it is decoded, so that
// every unknown key and every value of the wrong type is reported at once, each with its field
// path, its line and, for a misspelt key, the field meant — not as the decoder's first error,
// which names Go types.
func checkYAML(data []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("parse configuration: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil
	}
	var problems []FieldError
	walkNode(doc.Content[0], reflect.TypeOf(Config{}), "", &problems)
	if len(problems) == 0 {
		return nil
	}
	return &ValidationError{Errors: problems}
}

func walkNode(n *yaml.Node, t reflect.Type, prefix string, problems *[]FieldError) {
	at := func(n *yaml.Node, path string) string {
		return fmt.Sprintf("%s (line %d)", path, n.Line)
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			*problems = append(*problems, FieldError{Field: at(n, strings.TrimSuffix(prefix, ".")), Value: n.Value, Allowed: "a mapping of its fields"})
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, value := n.Content[i], n.Content[i+1]
			f, ok := fieldByTag(t, key.Value)
			if !ok {
				allowed := "a field of " + strings.TrimSuffix(prefix, ".")
				if prefix == "" {
					allowed = "one of environment, network, bastion, database, target"
				}
				if s := closest(key.Value, tags(t)); s != "" {
					allowed = "did you mean " + prefix + s + "?"
				}
				*problems = append(*problems, FieldError{Field: at(key, prefix+key.Value), Value: value.Value, Allowed: "an unknown field: " + allowed})
				continue
			}
			walkNode(value, f.Type, prefix+key.Value+".", problems)
		}
	case reflect.Int:
		if _, err := strconv.Atoi(n.Value); err != nil || n.Kind != yaml.ScalarNode {
			*problems = append(*problems, FieldError{Field: at(n, strings.TrimSuffix(prefix, ".")), Value: n.Value, Allowed: "a whole number"})
		}
	case reflect.Float64:
		if _, err := strconv.ParseFloat(n.Value, 64); err != nil || n.Kind != yaml.ScalarNode {
			*problems = append(*problems, FieldError{Field: at(n, strings.TrimSuffix(prefix, ".")), Value: n.Value, Allowed: "a number"})
		}
	case reflect.Bool:
		if _, err := strconv.ParseBool(n.Value); err != nil || n.Kind != yaml.ScalarNode {
			*problems = append(*problems, FieldError{Field: at(n, strings.TrimSuffix(prefix, ".")), Value: n.Value, Allowed: "true or false"})
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			*problems = append(*problems, FieldError{Field: at(n, strings.TrimSuffix(prefix, ".")), Value: "", Allowed: "a single value (text)"})
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			*problems = append(*problems, FieldError{Field: at(n, strings.TrimSuffix(prefix, ".")), Value: n.Value, Allowed: "a mapping of names to values"})
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			walkNode(n.Content[i+1], t.Elem(), prefix+n.Content[i].Value+".", problems)
		}
	}
}

func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		if f := t.Field(i); strings.Split(f.Tag.Get("yaml"), ",")[0] == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func tags(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		out = append(out, strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0])
	}
	return out
}

// closest is the candidate nearest to s by edit distance, when it is near enough to be the one
// meant (at most two edits, or a third of its letters), else "".
func closest(s string, candidates []string) string {
	best, bestD := "", max(2, len(s)/3)+1
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(s), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
