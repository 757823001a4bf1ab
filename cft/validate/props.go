package validate

import (
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/apgstack/apgstack/cft"
	"github.com/apgstack/apgstack/cft/schema"
)

// Transforms that provide resource types or features.
const (
	serverlessTransform = "AWS::Serverless-2016-10-31"
	secretsTransform    = "AWS::SecretsManager-2024-09-16"
	secretsTransformOld = "AWS::SecretsManager-2020-07-23"
)

// checkResources checks each resource: attributes, references, dependencies, and properties against
// the schema of its type.
func (c *checker) checkResources() {
	c.graph = map[string][]string{}
	for i, r := range c.t.Resources {
		where := at{secResources, i, r.Name}
		c.entryCond = r.Condition
		if r.Condition != "" {
			c.conditionName(where, r.Condition, "Condition", "Condition")
		}
		var deps []string
		for _, d := range r.DependsOn {
			if _, ok := c.resources[d]; !ok {
				c.errorf(where, "DependsOn", RuleDependsOnTarget, "DependsOn %q: no resource is called that", d)
				continue
			}
			c.guarded = false
			c.conditional(where, d, "DependsOn "+d, "DependsOn")
			if !slices.Contains(deps, d) {
				deps = append(deps, d)
			}
		}
		for _, part := range []struct {
			name string
			v    any
		}{{"Properties", r.Properties}, {"Metadata", r.Metadata}, {"CreationPolicy", r.CreationPolicy}, {"UpdatePolicy", r.UpdatePolicy}} {
			if part.v == nil {
				continue
			}
			for _, d := range c.refs(where, inResource, part.v, part.name) {
				if !slices.Contains(deps, d) {
					deps = append(deps, d)
				}
			}
		}
		c.graph[r.Name] = deps
		c.policies(where, r)
		c.properties(where, r)
	}
	c.entryCond = ""
}

// policies checks DeletionPolicy and UpdateReplacePolicy values.
func (c *checker) policies(where at, r *cft.Resource) {
	if p := r.DeletionPolicy; p != "" && !slices.Contains([]string{"Delete", "Retain", "RetainExceptOnCreate", "Snapshot"}, p) {
		c.errorf(where, "DeletionPolicy", RuleResourceAttr, "DeletionPolicy %q is not one of Delete, Retain, RetainExceptOnCreate, Snapshot", p)
	}
	if p := r.UpdateReplacePolicy; p != "" && !slices.Contains([]string{"Delete", "Retain", "Snapshot"}, p) {
		c.errorf(where, "UpdateReplacePolicy", RuleResourceAttr, "UpdateReplacePolicy %q is not one of Delete, Retain, Snapshot", p)
	}
}

func (c *checker) hasTransform(names ...string) bool {
	for _, t := range c.t.Transform {
		if slices.Contains(names, t) {
			return true
		}
	}
	return false
}

// properties checks a resource's properties against the schema of its type.
func (c *checker) properties(where at, r *cft.Resource) {
	typ := r.Type
	switch {
	case strings.HasPrefix(typ, "Custom::") || typ == "AWS::CloudFormation::CustomResource":
		// A custom resource takes any properties; CloudFormation itself needs only ServiceToken.
		if _, ok := r.Properties["ServiceToken"]; !ok {
			c.errorf(where, "Properties", RuleRequired, "a custom resource needs the property ServiceToken (the ARN of the Lambda function or SNS topic that handles it)")
		}
		return
	case typ == "AWS::CDK::Metadata":
		return // written by the AWS CDK; CloudFormation accepts it without a registry schema
	case strings.HasPrefix(typ, "AWS::Serverless::"):
		if !c.hasTransform(serverlessTransform) {
			c.errorf(where, "Type", RuleTransform, "%s exists only with Transform: %s, which this template does not declare", typ, serverlessTransform)
		}
		return // the transform rewrites it; its own specification applies, not a registry schema
	}
	s, err := schema.Lookup(typ)
	if err != nil {
		parts := strings.Split(typ, "::")
		switch {
		case schema.Suggest(typ) != "":
			c.errorf(where, "Type", RuleUnknownType, "unknown resource type %s; did you mean %s?", typ, schema.Suggest(typ))
		case len(parts) != 3:
			c.errorf(where, "Type", RuleUnknownType, "%q is not a resource type (want Organization::Service::Resource, e.g. AWS::EC2::VPC)", typ)
		case parts[0] == "AWS":
			c.errorf(where, "Type", RuleUnknownType, "unknown resource type %s: the CloudFormation registry schemas (%s) do not have it", typ, schema.Source())
		default:
			// Third-party or private registry types cannot be known from the public schemas.
			c.warnf(where, "Type", RuleUnknownType, "resource type %s is not an AWS type; its properties are not checked", typ)
		}
		return
	}
	if typ == "AWS::SecretsManager::RotationSchedule" {
		if _, hosted := r.Properties["HostedRotationLambda"]; hosted {
			switch {
			case c.hasTransform(secretsTransform):
			case c.hasTransform(secretsTransformOld):
				c.warnf(where, "Properties.HostedRotationLambda", RuleTransform, "HostedRotationLambda works with Transform: %s, but %s is its current version", secretsTransformOld, secretsTransform)
			default:
				c.errorf(where, "Properties.HostedRotationLambda", RuleTransform, "HostedRotationLambda needs Transform: %s, which this template does not declare", secretsTransform)
			}
		}
	}
	v := &propChecker{c: c, where: where, s: s, notRequired: notRequired[typ]}
	var props any = r.Properties
	if r.Properties == nil {
		props = map[string]any{}
	}
	v.value(props, &s.Node, "Properties", true)
}

// propChecker validates values against one type's schema.
type propChecker struct {
	c     *checker
	where at
	s     *schema.Schema
	// notRequired lists top-level properties the schema requires but CloudFormation does not.
	notRequired []string
}

// notRequired corrects registry schemas that require what CloudFormation itself does not: the
// schema of a nested stack describes the Cloud Control API, where StackName is required; in a
// template CloudFormation names the nested stack itself.
var notRequired = map[string][]string{
	"AWS::CloudFormation::Stack": {"StackName"},
}

func (p *propChecker) errorf(path, rule, format string, args ...any) {
	p.c.errorf(p.where, path, rule, format, args...)
}

func (p *propChecker) warnf(path, rule, format string, args ...any) {
	p.c.warnf(p.where, path, rule, format, args...)
}

// value checks v against node. top is true for the resource's Properties object.
func (p *propChecker) value(v any, node *schema.Node, path string, top bool) {
	n := p.s.Resolve(node)
	if n == nil || v == nil {
		return // unconstrained, or a null CloudFormation drops
	}
	if name, arg, ok := cft.Intrinsic(v); ok {
		if name == "Fn::If" {
			// Each branch must fit where the Fn::If stands.
			if args, ok := arg.([]any); ok && len(args) == 3 {
				for i, b := range args[1:] {
					if ref, isRef := cft.RefName(b); isRef && ref == cft.NoValueName {
						continue
					}
					p.value(b, node, fmt.Sprintf("%s.Fn::If[%d]", path, i+1), top)
				}
			}
		}
		// Other functions' values are known only at deploy time, but whether they give one
		// value or a list is known now.
		if k := p.c.resultKind(name, arg); k != kindUnknown {
			p.kindOK(k, name, n, path)
		}
		return
	}
	// oneOf/anyOf are applied leniently: the schemas use them mostly to say "one of these
	// properties is required", which intrinsic functions may satisfy in ways known only at deploy
	// time. Their properties count as known (object), their types as allowed (typeOK).
	for _, sub := range n.AllOf {
		p.value(v, sub, path, top)
	}
	if !p.typeOK(v, n, path) {
		return
	}
	if len(n.Enum) > 0 {
		if s, ok := literal(v); ok && !enumHas(n.Enum, s) {
			p.errorf(path, RuleEnum, "%q is not an allowed value (%s)", s, enumList(n.Enum))
		}
	}
	if n.Const != nil {
		if s, ok := literal(v); ok && s != scalar(n.Const) {
			p.errorf(path, RuleEnum, "%q is not the only allowed value %q", s, scalar(n.Const))
		}
	}
	p.bounds(v, n, path)
	switch x := v.(type) {
	case map[string]any:
		p.object(x, n, path, top)
	case []any:
		if n.Items != nil {
			for i, e := range x {
				p.value(e, n.Items, fmt.Sprintf("%s[%d]", path, i), false)
			}
		}
	}
}

// typeOK checks v against the node's type (or, when the node has none and offers alternatives
// that all have types, against theirs). Scalars convert as CloudFormation converts them: anything
// scalar is a string, and strings holding numbers or booleans are numbers or booleans.
func (p *propChecker) typeOK(v any, n *schema.Node, path string) bool {
	types := p.types(n)
	if len(types) == 0 {
		return true
	}
	for _, t := range types {
		if fits(v, t) {
			return true
		}
	}
	p.errorf(path, RulePropertyType, "want %s, got %s", strings.Join(types, " or "), describe(v))
	return false
}

// bounds checks literal values against the schema's lengths, ranges and item counts. (Patterns
// are not checked: they are ECMAScript expressions that Go's regexp does not fully read.)
func (p *propChecker) bounds(v any, n *schema.Node, path string) {
	switch x := v.(type) {
	case string:
		if !n.Type.Has("string") {
			break
		}
		if strings.Contains(x, "{{resolve:") {
			return // a dynamic reference: its value comes at deploy time
		}
		l := utf8.RuneCountInString(x)
		if n.MinLength != nil && l < *n.MinLength {
			p.errorf(path, RuleRange, "%q is %d characters long; the minimum is %d", x, l, *n.MinLength)
		}
		if n.MaxLength != nil && l > *n.MaxLength {
			p.errorf(path, RuleRange, "%s is %d characters long; the maximum is %d", describe(x), l, *n.MaxLength)
		}
	case []any:
		if n.MinItems != nil && len(x) < *n.MinItems {
			p.errorf(path, RuleRange, "%d items; the minimum is %d", len(x), *n.MinItems)
		}
		if n.MaxItems != nil && len(x) > *n.MaxItems {
			p.errorf(path, RuleRange, "%d items; the maximum is %d", len(x), *n.MaxItems)
		}
	}
	if !n.Type.Has("integer") && !n.Type.Has("number") {
		return
	}
	s, ok := literal(v)
	if !ok {
		return
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return
	}
	if n.Minimum != nil && f < *n.Minimum {
		p.errorf(path, RuleRange, "%s is less than the minimum %s", s, scalar(*n.Minimum))
	}
	if n.Maximum != nil && f > *n.Maximum {
		p.errorf(path, RuleRange, "%s is greater than the maximum %s", s, scalar(*n.Maximum))
	}
}

// kindOK checks a function's kind of result against the node's types: a list where only
// scalars fit, or a single value where only a list fits.
func (p *propChecker) kindOK(k kind, fn string, n *schema.Node, path string) {
	types := p.types(n)
	if len(types) == 0 {
		return
	}
	var list, scalar bool
	for _, t := range types {
		switch t {
		case "array":
			list = true
		case "string", "integer", "number", "boolean":
			scalar = true
		case "object":
			return // some JSON properties take a string too; leave objects alone
		default:
			return
		}
	}
	if k == kindList && !list || k == kindScalar && !scalar {
		p.errorf(path, RulePropertyType, "want %s, got %s, which gives %s", strings.Join(types, " or "), fn, k)
	}
}

// types returns the node's types or, when it has none and offers alternatives that all have
// types, theirs; nil means any type.
func (p *propChecker) types(n *schema.Node) []string {
	if len(n.Type) > 0 {
		return n.Type
	}
	var types []string
	for _, a := range append(append([]*schema.Node{}, n.OneOf...), n.AnyOf...) {
		r := p.s.Resolve(a)
		if r == nil || len(r.Type) == 0 {
			return nil
		}
		types = append(types, r.Type...)
	}
	return types
}

// fits reports whether v is acceptable where the schema says typ.
func fits(v any, typ string) bool {
	switch typ {
	case "string":
		switch v.(type) {
		case string, int, float64, bool:
			return true
		}
	case "integer":
		switch x := v.(type) {
		case int:
			return true
		case float64:
			return x == math.Trunc(x)
		case string:
			_, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
			return err == nil
		}
	case "number":
		switch x := v.(type) {
		case int, float64:
			return true
		case string:
			_, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
			return err == nil
		}
	case "boolean":
		switch x := v.(type) {
		case bool:
			return true
		case string:
			return strings.EqualFold(x, "true") || strings.EqualFold(x, "false")
		}
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "null":
		return v == nil
	default:
		return true
	}
	return false
}

// object checks an object's properties.
func (p *propChecker) object(obj map[string]any, n *schema.Node, path string, top bool) {
	for _, req := range n.Required {
		if top && slices.Contains(p.notRequired, req) {
			continue
		}
		val, ok := obj[req]
		if ref, isRef := cft.RefName(val); ok && isRef && ref == cft.NoValueName {
			ok = false
		}
		if !ok {
			p.errorf(path, RuleRequired, "missing required property %s", req)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		kp := join(path, k)
		if prop, ok := n.Properties[k]; ok {
			if top && p.s.ReadOnly(k) {
				p.warnf(kp, RuleReadOnly, "%s is set by CloudFormation (a read-only property of %s); a template cannot set it", k, p.s.TypeName)
			}
			p.value(obj[k], prop, kp, false)
			continue
		}
		if prop := p.patternProperty(n, k); prop != nil {
			p.value(obj[k], prop, kp, false)
			continue
		}
		if prop, ok := p.alternativeProperty(n, k); ok {
			p.value(obj[k], prop, kp, false)
			continue
		}
		if n.ClosedObject() {
			p.errorf(kp, RuleUnknownProperty, "%s has no property %s%s", p.owner(path), k, p.suggest(n, k))
		}
	}
}

// owner names the object whose property is unknown, for messages.
func (p *propChecker) owner(path string) string {
	if path == "Properties" {
		return p.s.TypeName
	}
	return path
}

// suggest proposes a property that differs only in case.
func (p *propChecker) suggest(n *schema.Node, k string) string {
	for name := range n.Properties {
		if strings.EqualFold(name, k) {
			return fmt.Sprintf(" (did you mean %s?)", name)
		}
	}
	return ""
}

var (
	patternMu    sync.Mutex
	patternCache = map[string]*regexp.Regexp{}
)

// patternProperty finds the patternProperties entry a key matches. A pattern Go cannot compile
// (ECMAScript features) matches everything: it cannot be checked here.
func (p *propChecker) patternProperty(n *schema.Node, k string) *schema.Node {
	for _, pat := range slices.Sorted(maps.Keys(n.PatternProperties)) { // sorted: the same match every run
		prop := n.PatternProperties[pat]
		patternMu.Lock()
		re, seen := patternCache[pat]
		if !seen {
			re, _ = regexp.Compile(pat)
			patternCache[pat] = re
		}
		patternMu.Unlock()
		if re == nil || re.MatchString(k) {
			return prop
		}
	}
	return nil
}

// alternativeProperty finds k among the properties of the node's oneOf/anyOf/allOf alternatives.
func (p *propChecker) alternativeProperty(n *schema.Node, k string) (*schema.Node, bool) {
	for _, list := range [][]*schema.Node{n.OneOf, n.AnyOf, n.AllOf} {
		for _, a := range list {
			r := p.s.Resolve(a)
			if r == nil {
				continue
			}
			if prop, ok := r.Properties[k]; ok {
				return prop, true
			}
			if prop := p.patternProperty(r, k); prop != nil {
				return prop, true
			}
		}
	}
	return nil, false
}

func enumHas(enum []any, s string) bool {
	for _, e := range enum {
		if scalar(e) == s {
			return true
		}
		// 7 and 7.0, "7" and 7: the same number.
		a, errA := strconv.ParseFloat(scalar(e), 64)
		b, errB := strconv.ParseFloat(s, 64)
		if errA == nil && errB == nil && a == b {
			return true
		}
	}
	return false
}

func enumList(enum []any) string {
	parts := make([]string, 0, len(enum))
	for i, e := range enum {
		if i == 12 {
			parts = append(parts, fmt.Sprintf("... %d more", len(enum)-12))
			break
		}
		parts = append(parts, scalar(e))
	}
	return strings.Join(parts, ", ")
}
