package policy

import (
	"fmt"
	"strings"

	"github.com/apgstack/apgstack/cft"
)

// A condition that depends on a parameter without a value (a placeholder) is unknown: the
// placeholder would decide it one way, which could make a check pass by accident. Before
// evaluation, every Fn::If on an unknown condition is replaced by a marker that no rule takes as
// compliant, and resources under an unknown condition are checked as if created.

const unsetConditionPrefix = "{{apgstack:unset-condition:"

// unknownConditions returns, for each condition that depends on a placeholder parameter, that
// parameter's name.
func unknownConditions(t *cft.Template, values map[string]string) map[string]string {
	unknown := map[string]string{}
	for changed := true; changed; {
		changed = false
		for _, c := range t.Conditions {
			if _, done := unknown[c.Name]; done {
				continue
			}
			if p := dependsOnUnset(c.Value, values, unknown); p != "" {
				unknown[c.Name] = p
				changed = true
			}
		}
	}
	return unknown
}

// dependsOnUnset returns the placeholder parameter (or unknown condition's parameter) an
// expression refers to, or "".
func dependsOnUnset(v any, values map[string]string, unknown map[string]string) string {
	if name, arg, ok := cft.Intrinsic(v); ok {
		s, _ := arg.(string)
		switch name {
		case "Ref":
			if p, isPH := placeholderParam(values[s]); isPH {
				return p
			}
			return ""
		case "Condition":
			return unknown[s]
		}
	}
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			if p := dependsOnUnset(e, values, unknown); p != "" {
				return p
			}
		}
	case []any:
		for _, e := range x {
			if p := dependsOnUnset(e, values, unknown); p != "" {
				return p
			}
		}
	}
	return ""
}

// withUnknownConditions returns a copy of the template whose Fn::If on unknown conditions are
// markers.
func withUnknownConditions(t *cft.Template, unknown map[string]string) *cft.Template {
	c := *t
	c.Resources = make([]*cft.Resource, len(t.Resources))
	for i, r := range t.Resources {
		rc := *r
		rc.Properties, _ = markIfs(r.Properties, unknown).(map[string]any)
		rc.Metadata, _ = markIfs(r.Metadata, unknown).(map[string]any)
		c.Resources[i] = &rc
	}
	return &c
}

func markIfs(v any, unknown map[string]string) any {
	if name, arg, ok := cft.Intrinsic(v); ok && name == "Fn::If" {
		if args, isList := arg.([]any); isList && len(args) == 3 {
			cond, _ := args[0].(string)
			if p, isUnknown := unknown[cond]; isUnknown {
				// An ImportValue stays unresolved through evaluation; Why recognizes the marker.
				return cft.ImportValue(unsetConditionPrefix + cond + ":" + p + "}}")
			}
		}
	}
	switch x := v.(type) {
	case map[string]any:
		if x == nil {
			return x
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = markIfs(e, unknown)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = markIfs(e, unknown)
		}
		return out
	}
	return v
}

// unsetCondition finds a marker inside v and explains it.
func unsetCondition(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		i := strings.Index(x, unsetConditionPrefix)
		if i < 0 {
			return "", false
		}
		rest := strings.TrimSuffix(x[i+len(unsetConditionPrefix):], "}}")
		cond, param, _ := strings.Cut(rest, ":")
		return fmt.Sprintf("its value depends on condition %s, which depends on parameter %s, which has no default, so it cannot be shown compliant", cond, param), true
	case map[string]any:
		for _, e := range x {
			if w, ok := unsetCondition(e); ok {
				return w, true
			}
		}
	case []any:
		for _, e := range x {
			if w, ok := unsetCondition(e); ok {
				return w, true
			}
		}
	}
	return "", false
}
