package validate

import (
	"github.com/apgstack/apgstack/cft"
)

// What an intrinsic function yields (a value, a list), as far as it is known before deploying.

// kind is what an intrinsic function gives, as far as it is known without deploying.
type kind int

const (
	kindUnknown kind = iota
	kindScalar       // a string (or a number)
	kindList         // a list of strings
)

func (k kind) String() string {
	switch k {
	case kindScalar:
		return "a single value"
	case kindList:
		return "a list"
	}
	return "a value"
}

// resultKind tells what a function call gives.
func (c *checker) resultKind(name string, arg any) kind {
	switch name {
	case "Ref":
		target, _ := arg.(string)
		if target == cft.NotificationARNs {
			return kindList
		}
		if cft.IsPseudo(target) {
			return kindScalar
		}
		if p, ok := c.params[target]; ok {
			if valid, list := parameterType(p.Type); valid && list {
				return kindList
			} else if valid {
				return kindScalar
			}
			return kindUnknown
		}
		if _, ok := c.resources[target]; ok {
			return kindScalar // a resource's Ref is its physical id
		}
	case "Fn::Join", "Fn::Sub", "Fn::Base64", "Fn::ImportValue", "Fn::ToJsonString", "Fn::Length":
		return kindScalar
	case "Fn::GetAZs", "Fn::Split", "Fn::Cidr":
		return kindList
	}
	return kindUnknown
}

// valueKind is resultKind for any value: literal lists and scalars included.
func (c *checker) valueKind(v any) kind {
	if name, arg, ok := cft.Intrinsic(v); ok {
		return c.resultKind(name, arg)
	}
	switch v.(type) {
	case []any:
		return kindList
	case string, int, float64, bool:
		return kindScalar
	}
	return kindUnknown
}
