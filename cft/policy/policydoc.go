package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/apgstack/apgstack/cft"
)

// statement is one statement of an IAM or resource policy document.
type statement struct {
	path      string // e.g. Properties.KeyPolicy.Statement[0]
	allow     bool
	principal any
	actions   []string // Action, or NotAction when notAction
	notAction bool
	resources []string // literal Resource entries ("*" matters); NotResource counts as "*"
	condition map[string]any
}

// statements reads a policy document (resolved) at path.
func statements(doc any, path string) []statement {
	m, ok := doc.(map[string]any)
	if !ok {
		return nil
	}
	raw := m["Statement"]
	list := List(raw)
	var out []statement
	for i, e := range list {
		s, ok := e.(map[string]any)
		if !ok {
			continue
		}
		st := statement{path: path + ".Statement", allow: fmt.Sprint(s["Effect"]) == "Allow", principal: s["Principal"]}
		if _, isList := raw.([]any); isList {
			st.path = fmt.Sprintf("%s.Statement[%d]", path, i)
		}
		if s["Principal"] == nil && s["NotPrincipal"] != nil {
			st.principal = "*" // NotPrincipal with Allow grants everyone else
		}
		if a, ok := s["Action"]; ok {
			st.actions = Strings(a)
		} else {
			st.actions, st.notAction = Strings(s["NotAction"]), true
		}
		if r, ok := s["Resource"]; ok {
			st.resources = Strings(r)
		} else if _, ok := s["NotResource"]; ok {
			st.resources = []string{"*"}
		}
		st.condition, _ = s["Condition"].(map[string]any)
		out = append(out, st)
	}
	return out
}

// wildcardPrincipal reports whether a principal admits everyone.
func wildcardPrincipal(p any) bool {
	switch x := p.(type) {
	case string:
		return x == "*"
	case map[string]any:
		for k, v := range x {
			if k == "Service" || k == "Federated" {
				continue
			}
			if slices.Contains(Strings(v), "*") {
				return true
			}
		}
	}
	return false
}

// servicePrincipals lists the service principals a statement names.
func servicePrincipals(p any) []string {
	m, ok := p.(map[string]any)
	if !ok {
		return nil
	}
	return Strings(m["Service"])
}

// matches reports whether an action pattern of a policy (kms:*, kms:GenerateDataKey*) grants
// action.
func matches(pattern, action string) bool {
	p, a := strings.ToLower(pattern), strings.ToLower(action)
	if p == "*" {
		return true
	}
	if strings.HasSuffix(p, "*") {
		return strings.HasPrefix(a, strings.TrimSuffix(p, "*"))
	}
	return p == a
}

// grants reports whether an Allow statement grants action.
func (s statement) grants(action string) bool {
	if !s.allow {
		return false
	}
	for _, p := range s.actions {
		if matches(p, action) {
			return !s.notAction
		}
	}
	return s.notAction
}

func (s statement) allResources() bool {
	return slices.Contains(s.resources, "*")
}

// policyDoc is an IAM identity policy document found in a resource.
type policyDoc struct {
	res  *cft.Resource
	path string
	doc  any
}

var iamTypes = []string{"AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy", "AWS::IAM::UserPolicy", "AWS::IAM::GroupPolicy"}

// identityPolicies returns every identity-based policy document of the template.
func (c *Context) identityPolicies() []policyDoc {
	var out []policyDoc
	for _, r := range c.OfType(iamTypes...) {
		if doc, ok := Prop(r, "PolicyDocument"); ok {
			out = append(out, policyDoc{r, "Properties.PolicyDocument", doc})
		}
		pols, _ := Prop(r, "Policies")
		for i, p := range List(pols) {
			if m, ok := p.(map[string]any); ok {
				out = append(out, policyDoc{r, fmt.Sprintf("Properties.Policies[%d].PolicyDocument", i), m["PolicyDocument"]})
			}
		}
	}
	return out
}

// identityStatements returns the statements of every identity-based policy, with their resource.
func (c *Context) identityStatements() []struct {
	res *cft.Resource
	statement
} {
	var out []struct {
		res *cft.Resource
		statement
	}
	for _, d := range c.identityPolicies() {
		for _, s := range statements(d.doc, d.path) {
			out = append(out, struct {
				res *cft.Resource
				statement
			}{d.res, s})
		}
	}
	return out
}

// noWildcardPrincipal checks a resource policy document for Allow statements open to everyone.
func noWildcardPrincipal(r *cft.Resource, path string, what string) []Violation {
	doc, _ := Prop(r, strings.TrimPrefix(path, "Properties."))
	var out []Violation
	for _, s := range statements(doc, path) {
		if s.allow && wildcardPrincipal(s.principal) {
			out = append(out, Violation{r.Name, s.path + ".Principal", fmt.Sprintf("the %s lets any principal (*) in", what)})
		}
	}
	return out
}
