package policy

import (
	"strings"

	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/cft"
	"github.com/apgstack/apgstack/cft/schema"
)

// Tag rules: the mandatory tags on every taggable resource.

// declaresTagParameters reports whether a template takes any of the mandatory tag parameters.
func declaresTagParameters(t *cft.Template) bool {
	for _, k := range bestpractice.MandatoryTags {
		if t.Parameter(k) != nil {
			return true
		}
	}
	return false
}

var tagRules = []*Rule{{
	ID: "TAG-001", Severity: Error, Title: "Taggable resources carry the mandatory tags",
	Rationale: "owner, cost centre, stage, confidentiality and compliance tags are how costs are charged, owners reached and data governed",
	Fix:       "add " + strings.Join(bestpractice.MandatoryTags, ", ") + " to Tags (from the stack parameters of the same names)",
	Source:    "AWS Tagging Best Practices; Security Hub RDS.28 and the other *.tagged controls",
	Types:     []string{"every type whose schema has Tags"},
	Stages:    "",
	check: func(c *Context) []Violation {
		if !declaresTagParameters(c.Template) {
			return nil // TAG-002
		}
		var out []Violation
		for _, r := range c.Resources {
			s, err := schema.Lookup(r.Type)
			if err != nil {
				continue // custom or unknown types: nothing to say
			}
			taggable, prop := s.Taggable()
			if !taggable {
				continue
			}
			v, _ := Prop(r, prop)
			have := tagKeys(v)
			var missing []string
			for _, k := range bestpractice.MandatoryTags {
				if !have[k] {
					missing = append(missing, k)
				}
			}
			if len(missing) > 0 {
				out = append(out, one(r, "Properties."+prop, "missing tags: %s", strings.Join(missing, ", "))...)
			}
		}
		return out
	},
}, {
	ID: "TAG-002", Severity: Warning, Title: "Templates without tag parameters are deployed with stack tags",
	Rationale: "a template that takes none of the mandatory tag parameters leaves its resources untagged unless the stack itself is tagged, which CloudFormation then propagates",
	Fix:       "create the stack with --tags for " + strings.Join(bestpractice.MandatoryTags, ", ") + " (apgstack up does), or add the tag parameters and tag each resource",
	Source:    "CloudFormation User Guide: Resource tags (stack-level tags propagate); AWS Tagging Best Practices",
	Types:     []string{"every type whose schema has Tags"},
	check: func(c *Context) []Violation {
		if declaresTagParameters(c.Template) {
			return nil
		}
		var untagged []string
		var first *cft.Resource
		for _, r := range c.Resources {
			s, err := schema.Lookup(r.Type)
			if err != nil {
				continue
			}
			if taggable, prop := s.Taggable(); taggable {
				v, _ := Prop(r, prop)
				have := tagKeys(v)
				for _, k := range bestpractice.MandatoryTags {
					if !have[k] {
						untagged = append(untagged, r.Name)
						if first == nil {
							first = r
						}
						break
					}
				}
			}
		}
		if first == nil {
			return nil
		}
		return one(first, "", "the template takes no mandatory tag parameters; %d taggable resource(s) rely on stack-level tags", len(untagged))
	},
}}

// tagKeys reads tag keys with a value from a Tags list ({Key, Value}) or map.
func tagKeys(v any) map[string]bool {
	out := map[string]bool{}
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			m, _ := e.(map[string]any)
			k, _ := m["Key"].(string)
			if val, ok := m["Value"]; ok && val != nil && val != "" && k != "" {
				out[k] = true
			}
		}
	case map[string]any:
		for k, val := range x {
			if val != nil && val != "" {
				out[k] = true
			}
		}
	}
	return out
}
