package validate

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/apgstack/apgstack/cft"
)

// awsParameterTypes are the AWS-specific parameter types; each also exists as List<...>.
var awsParameterTypes = map[string]bool{
	"AWS::EC2::AvailabilityZone::Name":   true,
	"AWS::EC2::Image::Id":                true,
	"AWS::EC2::Instance::Id":             true,
	"AWS::EC2::KeyPair::KeyName":         true,
	"AWS::EC2::SecurityGroup::GroupName": true,
	"AWS::EC2::SecurityGroup::Id":        true,
	"AWS::EC2::Subnet::Id":               true,
	"AWS::EC2::Volume::Id":               true,
	"AWS::EC2::VPC::Id":                  true,
	"AWS::Route53::HostedZone::Id":       true,
}

// parameterType reports whether typ is a CloudFormation parameter type, and whether its values
// are lists.
func parameterType(typ string) (valid, list bool) {
	switch typ {
	case "String", "Number", "AWS::SSM::Parameter::Name":
		return true, false
	case "List<Number>", "CommaDelimitedList":
		return true, true
	}
	if inner, ok := strings.CutPrefix(typ, "AWS::SSM::Parameter::Value<"); ok && strings.HasSuffix(inner, ">") {
		inner = strings.TrimSuffix(inner, ">")
		switch inner {
		case "String":
			return true, false
		case "List<String>", "CommaDelimitedList":
			return true, true
		}
		v, l := parameterType(inner)
		return v && (awsParameterTypes[strings.TrimSuffix(strings.TrimPrefix(inner, "List<"), ">")]), l
	}
	if inner, ok := strings.CutPrefix(typ, "List<"); ok && strings.HasSuffix(inner, ">") {
		return awsParameterTypes[strings.TrimSuffix(inner, ">")], true
	}
	return awsParameterTypes[typ], false
}

// parameters checks each parameter's type and that its default satisfies its own constraints.
func (c *checker) parameters() {
	for i, p := range c.t.Parameters {
		where := at{secParameters, i, p.Name}
		valid, list := parameterType(p.Type)
		if !valid {
			c.errorf(where, "Type", RuleParameterType, "%q is not a parameter type (String, Number, List<Number>, CommaDelimitedList, an AWS-specific type such as AWS::EC2::VPC::Id or List<...> of one, or AWS::SSM::Parameter::Value<...>)", p.Type)
			continue
		}
		if p.MinLength != nil && p.MaxLength != nil && *p.MinLength > *p.MaxLength {
			c.errorf(where, "MinLength", RuleParameterDefault, "MinLength %d is greater than MaxLength %d", *p.MinLength, *p.MaxLength)
		}
		if p.MinValue != nil && p.MaxValue != nil && *p.MinValue > *p.MaxValue {
			c.errorf(where, "MinValue", RuleParameterDefault, "MinValue %s is greater than MaxValue %s", scalar(*p.MinValue), scalar(*p.MaxValue))
		}
		var re *regexp.Regexp
		if p.AllowedPattern != "" {
			var err error
			// CloudFormation matches AllowedPattern (a Java regular expression) against the whole
			// value, so it is anchored at both ends.
			re, err = regexp.Compile(`^(?:` + p.AllowedPattern + `)$`)
			if err != nil && p.Default != nil {
				c.warnf(where, "AllowedPattern", RuleParameterPattern, "the default cannot be checked against AllowedPattern %q here (%v)", p.AllowedPattern, err)
			}
		}
		if p.Default == nil {
			continue
		}
		if _, _, fn := cft.Intrinsic(p.Default); fn {
			c.errorf(where, "Default", RuleParameterDefault, "a default must be a literal value, not %s", describe(p.Default))
			continue
		}
		var values []string
		if l, isList := p.Default.([]any); isList {
			if !list {
				c.errorf(where, "Default", RuleParameterDefault, "default is a list, but a %s parameter takes one value", p.Type)
				continue
			}
			for _, e := range l {
				values = append(values, scalar(e))
			}
		} else if s := scalar(p.Default); list {
			if s != "" {
				for _, e := range strings.Split(s, ",") {
					values = append(values, strings.TrimSpace(e))
				}
			}
		} else {
			values = []string{s}
		}
		for _, v := range values {
			c.checkDefault(where, p, v, re)
		}
	}
}

// checkDefault checks one (element of a) default value.
func (c *checker) checkDefault(where at, p *cft.Parameter, v string, re *regexp.Regexp) {
	bad := func(format string, args ...any) {
		c.errorf(where, "Default", RuleParameterDefault, "default %q %s", v, fmt.Sprintf(format, args...))
	}
	if p.Type == "Number" || p.Type == "List<Number>" {
		n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
			bad("is not a number, and the parameter's type is %s", p.Type)
			return
		}
		if p.MinValue != nil && n < *p.MinValue {
			bad("is less than MinValue %s", scalar(*p.MinValue))
		}
		if p.MaxValue != nil && n > *p.MaxValue {
			bad("is greater than MaxValue %s", scalar(*p.MaxValue))
		}
	}
	if len(p.AllowedValues) > 0 && !allowed(v, p.AllowedValues) {
		bad("is not one of the AllowedValues (%s)", joinScalars(p.AllowedValues))
	}
	if re != nil && !re.MatchString(v) {
		bad("does not match AllowedPattern %s", p.AllowedPattern)
	}
	n := utf8.RuneCountInString(v)
	if p.MinLength != nil && n < *p.MinLength {
		bad("is shorter than MinLength %d", *p.MinLength)
	}
	if p.MaxLength != nil && n > *p.MaxLength {
		bad("is longer than MaxLength %d", *p.MaxLength)
	}
}

// allowed compares as CloudFormation does, by string, and also numerically so that a default of
// 5432 matches an allowed '5432.0'.
func allowed(v string, list []any) bool {
	nv, numErr := strconv.ParseFloat(v, 64)
	for _, a := range list {
		s := scalar(a)
		if s == v {
			return true
		}
		if na, err := strconv.ParseFloat(s, 64); err == nil && numErr == nil && na == nv {
			return true
		}
	}
	return false
}

func joinScalars(list []any) string {
	parts := make([]string, len(list))
	for i, a := range list {
		parts[i] = scalar(a)
	}
	return strings.Join(parts, ", ")
}

// scalar renders a scalar the way CloudFormation turns it into a string.
func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int:
		return strconv.Itoa(x)
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}
