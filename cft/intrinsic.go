package cft

import (
	"slices"
	"strings"
)

// Pseudo parameters.
const (
	AccountId        = "AWS::AccountId"
	NotificationARNs = "AWS::NotificationARNs"
	NoValueName      = "AWS::NoValue"
	Partition        = "AWS::Partition"
	Region           = "AWS::Region"
	StackId          = "AWS::StackId"
	StackName        = "AWS::StackName"
	URLSuffix        = "AWS::URLSuffix"
)

// PseudoParameters lists every pseudo parameter a Ref may name.
var PseudoParameters = []string{AccountId, NotificationARNs, NoValueName, Partition, Region, StackId, StackName, URLSuffix}

// IsPseudo reports whether name is a pseudo parameter.
func IsPseudo(name string) bool {
	return slices.Contains(PseudoParameters, name)
}

// Functions maps the long-form key of every intrinsic function to its short-form YAML tag.
var Functions = map[string]string{
	"Ref":                  "!Ref",
	"Condition":            "!Condition",
	"Fn::Base64":           "!Base64",
	"Fn::Cidr":             "!Cidr",
	"Fn::FindInMap":        "!FindInMap",
	"Fn::GetAtt":           "!GetAtt",
	"Fn::GetAZs":           "!GetAZs",
	"Fn::ImportValue":      "!ImportValue",
	"Fn::Join":             "!Join",
	"Fn::Select":           "!Select",
	"Fn::Split":            "!Split",
	"Fn::Sub":              "!Sub",
	"Fn::Transform":        "!Transform",
	"Fn::If":               "!If",
	"Fn::Equals":           "!Equals",
	"Fn::Not":              "!Not",
	"Fn::And":              "!And",
	"Fn::Or":               "!Or",
	"Fn::Length":           "!Length",
	"Fn::ToJsonString":     "!ToJsonString",
	"Fn::Contains":         "!Contains",
	"Fn::EachMemberEquals": "!EachMemberEquals",
	"Fn::EachMemberIn":     "!EachMemberIn",
	"Fn::RefAll":           "!RefAll",
	"Fn::ValueOf":          "!ValueOf",
	"Fn::ValueOfAll":       "!ValueOfAll",
	"Fn::Implies":          "!Implies",
}

// tagFunctions is the reverse of Functions.
var tagFunctions = func() map[string]string {
	m := make(map[string]string, len(Functions))
	for k, v := range Functions {
		m[v] = k
	}
	return m
}()

// Intrinsic reports whether v is an intrinsic function call and returns its long-form name and
// argument.
func Intrinsic(v any) (name string, arg any, ok bool) {
	m, isMap := v.(map[string]any)
	if !isMap || len(m) != 1 {
		return "", nil, false
	}
	for k, a := range m {
		if _, known := Functions[k]; known {
			return k, a, true
		}
	}
	return "", nil, false
}

func fn(name string, arg any) map[string]any { return map[string]any{name: arg} }

// Ref refers to a parameter, resource or pseudo parameter.
func Ref(name string) map[string]any { return fn("Ref", name) }

// GetAtt reads an attribute of a resource; attr may contain dots (Endpoint.Address).
func GetAtt(resource, attr string) map[string]any {
	return fn("Fn::GetAtt", []any{resource, attr})
}

// Sub substitutes ${Name} references in s.
func Sub(s string) map[string]any { return fn("Fn::Sub", s) }

// SubVars substitutes with explicit variables.
func SubVars(s string, vars map[string]any) map[string]any {
	return fn("Fn::Sub", []any{s, vars})
}

// Join joins values with a delimiter.
func Join(delim string, values ...any) map[string]any {
	return fn("Fn::Join", []any{delim, values})
}

// JoinList joins a list value (such as a Ref to a list parameter) with a delimiter.
func JoinList(delim string, list any) map[string]any { return fn("Fn::Join", []any{delim, list}) }

// Split splits a string.
func Split(delim string, s any) map[string]any { return fn("Fn::Split", []any{delim, s}) }

// Select picks one element of a list.
func Select(index int, list any) map[string]any { return fn("Fn::Select", []any{index, list}) }

// GetAZs lists the Availability Zones of a Region ("" is the stack's Region).
func GetAZs(region any) map[string]any { return fn("Fn::GetAZs", region) }

// ImportValue reads another stack's export.
func ImportValue(name any) map[string]any { return fn("Fn::ImportValue", name) }

// ImportSub is the usual ImportValue of a Sub: !ImportValue {Fn::Sub: '${Parent}-VPC'}.
func ImportSub(s string) map[string]any { return ImportValue(Sub(s)) }

// If chooses by condition.
func If(condition string, then, otherwise any) map[string]any {
	return fn("Fn::If", []any{condition, then, otherwise})
}

// Equals compares two values.
func Equals(a, b any) map[string]any { return fn("Fn::Equals", []any{a, b}) }

// Not negates a condition.
func Not(c any) map[string]any { return fn("Fn::Not", []any{c}) }

// And is true when every condition is.
func And(cs ...any) map[string]any { return fn("Fn::And", cs) }

// Or is true when any condition is.
func Or(cs ...any) map[string]any { return fn("Fn::Or", cs) }

// Cond refers to a named condition inside Fn::And, Fn::Or and Fn::Not.
func Cond(name string) map[string]any { return fn("Condition", name) }

// FindInMap looks up a mapping.
func FindInMap(mapping string, top, second any) map[string]any {
	return fn("Fn::FindInMap", []any{mapping, top, second})
}

// Base64 encodes a string (user data).
func Base64(v any) map[string]any { return fn("Fn::Base64", v) }

// Cidr carves a CIDR block into count blocks of 2^bits addresses.
func Cidr(block any, count, bits int) map[string]any {
	return fn("Fn::Cidr", []any{block, count, bits})
}

// NoValue removes the property it is assigned to (Ref AWS::NoValue).
func NoValue() map[string]any { return Ref(NoValueName) }

// Tag is one element of a Tags list.
func Tag(key string, value any) map[string]any { return map[string]any{"Key": key, "Value": value} }

// RefName returns the target of a Ref, if v is one.
func RefName(v any) (string, bool) {
	name, arg, ok := Intrinsic(v)
	if !ok || name != "Ref" {
		return "", false
	}
	s, ok := arg.(string)
	return s, ok
}

// GetAttTarget returns the resource and attribute of a Fn::GetAtt, in either of its forms.
func GetAttTarget(v any) (resource, attr string, ok bool) {
	name, arg, isFn := Intrinsic(v)
	if !isFn || name != "Fn::GetAtt" {
		return "", "", false
	}
	switch a := arg.(type) {
	case string:
		resource, attr, _ = strings.Cut(a, ".")
		return resource, attr, true
	case []any:
		if len(a) == 2 {
			r, _ := a[0].(string)
			at, _ := a[1].(string)
			return r, at, r != ""
		}
	}
	return "", "", false
}

// SubRefs returns the names a Fn::Sub string refers to (${Name} and ${Res.Attr}), skipping
// literals (${!Literal}) and names given as explicit variables.
func SubRefs(s string, vars map[string]any) []string {
	var out []string
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			return out
		}
		j := strings.Index(s[i:], "}")
		if j < 0 {
			return out
		}
		name := s[i+2 : i+j]
		s = s[i+j+1:]
		if strings.HasPrefix(name, "!") {
			continue
		}
		if _, isVar := vars[name]; isVar {
			continue
		}
		out = append(out, name)
	}
}
