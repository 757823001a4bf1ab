package policy

import (
	"strings"

	"github.com/apgstack/apgstack/cft"
)

// Lambda rules: runtimes, VPC placement, invokers, failure handling.

// SupportedRuntimes are the Lambda runtimes not deprecated by late 2026 (Lambda Developer Guide,
// "Lambda runtimes"): the Amazon Linux 2 based ones (provided.al2, java8.al2, java11) retire with
// it on 2026-06-30, Node.js 20 on 2026-04-30, Python 3.10 and .NET 8 with their upstream end of
// life in 2026. Update the list when AWS announces more.
var SupportedRuntimes = []string{
	"provided.al2023",
	"nodejs24.x", "nodejs22.x",
	"python3.14", "python3.13", "python3.12", "python3.11",
	"java21", "java17",
	"dotnet10",
	"ruby3.4", "ruby3.3",
}

// asyncInvokers returns, for a function, the resources that invoke it asynchronously.
func (c *Context) asyncInvokers(fn string) []string {
	var out []string
	for _, r := range c.Resources {
		switch {
		case r.Type == "AWS::CloudFormation::CustomResource" || strings.HasPrefix(r.Type, "Custom::"):
			if v, _ := Prop(r, "ServiceToken"); Mentions(v, fn) {
				out = append(out, r.Name)
			}
		case r.Type == "AWS::SNS::Subscription":
			if p, _ := Prop(r, "Protocol"); p == "lambda" {
				if v, _ := Prop(r, "Endpoint"); Mentions(v, fn) {
					out = append(out, r.Name)
				}
			}
		case r.Type == "AWS::Events::Rule":
			if v, _ := Prop(r, "Targets"); Mentions(v, fn) {
				out = append(out, r.Name)
			}
		}
	}
	return out
}

var lambdaRules = []*Rule{
	{
		ID: "LAMBDA-001", Severity: Error, Title: "Functions run on a supported runtime",
		Rationale: "a deprecated runtime gets no security patches and soon cannot be updated",
		Fix:       "move to a supported runtime (provided.al2023 for Go)",
		Source:    "Security Hub Lambda.2",
		Types:     []string{lambdaFn},
		check: forEach([]string{lambdaFn}, func(c *Context, r *cft.Resource) []Violation {
			if pt, _ := Prop(r, "PackageType"); pt == "Image" {
				return nil
			}
			v, _ := Prop(r, "Runtime")
			s, ok, why := Str(v)
			if !ok {
				return one(r, "Properties.Runtime", "Runtime: %s", why)
			}
			for _, rt := range SupportedRuntimes {
				if s == rt {
					return nil
				}
			}
			return one(r, "Properties.Runtime", "runtime %q is deprecated or unknown", s)
		}),
	},
	{
		ID: "LAMBDA-002", Severity: Warning, Title: "Functions run in the VPC",
		Rationale: "a function that reaches the database or secrets should do so over private subnets and security groups, not the internet",
		Fix:       "set VpcConfig with the private subnets and the in-VPC Lambda security group",
		Source:    "Security Hub Lambda.3",
		Types:     []string{lambdaFn},
		check: forEach([]string{lambdaFn}, func(c *Context, r *cft.Resource) []Violation {
			_, sub := Prop(r, "VpcConfig.SubnetIds")
			_, sg := Prop(r, "VpcConfig.SecurityGroupIds")
			if !sub || !sg {
				return one(r, "Properties.VpcConfig", "the function is not attached to a VPC")
			}
			return nil
		}),
	},
	{
		ID: "LAMBDA-003", Severity: Warning, Title: "Asynchronously invoked functions have a failure path",
		Rationale: "an asynchronous invocation that fails after its retries is dropped without trace unless a dead-letter queue or on-failure destination keeps it",
		Fix:       "set DeadLetterConfig.TargetArn or add an AWS::Lambda::EventInvokeConfig with DestinationConfig.OnFailure",
		Source:    "Lambda Developer Guide: Retaining records of asynchronous invocations (dead-letter queues, destinations)",
		Types:     []string{lambdaFn, "AWS::Lambda::EventInvokeConfig"},
		check: forEach([]string{lambdaFn}, func(c *Context, r *cft.Resource) []Violation {
			inv := c.asyncInvokers(r.Name)
			if len(inv) == 0 {
				return nil
			}
			if _, ok := Prop(r, "DeadLetterConfig.TargetArn"); ok {
				return nil
			}
			for _, e := range c.OfType("AWS::Lambda::EventInvokeConfig") {
				if fn, _ := Prop(e, "FunctionName"); Mentions(fn, r.Name) {
					if _, ok := Prop(e, "DestinationConfig.OnFailure.Destination"); ok {
						return nil
					}
				}
			}
			return one(r, "Properties.DeadLetterConfig", "invoked asynchronously by %s but has no dead-letter queue or on-failure destination", strings.Join(inv, ", "))
		}),
	},
	{
		ID: "LAMBDA-004", Severity: Error, Title: "Function permissions are not public",
		Rationale: "a permission for * (or for a service without a source account or ARN) lets anyone, or anyone's resources, invoke the function",
		Fix:       "name the principal and, for a service principal, set SourceArn or SourceAccount",
		Source:    "Security Hub Lambda.1",
		Types:     []string{lambdaPerm},
		check: forEach([]string{lambdaPerm}, func(c *Context, r *cft.Resource) []Violation {
			p, _ := Prop(r, "Principal")
			s, _ := p.(string)
			if s == "*" {
				return one(r, "Properties.Principal", "the function may be invoked by anyone")
			}
			if strings.HasSuffix(s, ".amazonaws.com") {
				_, arn := Prop(r, "SourceArn")
				_, acct := Prop(r, "SourceAccount")
				if !arn && !acct {
					return one(r, "Properties.SourceArn", "%s may invoke the function on behalf of any account: set SourceArn or SourceAccount", s)
				}
			}
			return nil
		}),
	},
	{
		ID: "LAMBDA-005", Severity: Warning, Title: "VPC functions span at least two subnets",
		Rationale: "a function in one subnet stops when that Availability Zone does",
		Fix:       "give VpcConfig.SubnetIds subnets in two or more Availability Zones",
		Source:    "Security Hub Lambda.5",
		Types:     []string{lambdaFn},
		check: forEach([]string{lambdaFn}, func(c *Context, r *cft.Resource) []Violation {
			v, ok := Prop(r, "VpcConfig.SubnetIds")
			if !ok {
				return nil
			}
			// A list from another stack (Split of an import) has a length the template cannot show;
			// only a literal list is judged.
			if l, isList := v.([]any); isList && len(l) < 2 {
				return one(r, "Properties.VpcConfig.SubnetIds", "the function runs in %d subnet(s)", len(l))
			}
			return nil
		}),
	},
}
