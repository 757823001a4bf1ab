// Package stacks builds the three CloudFormation templates — network, bastion, database — from
// the configuration and the best-practice data, with the parameter values that the
// configuration gives them. It exports the names that other packages look up in those stacks
// (outputs, parameters, secret logical ids: names.go), so each is written once.
package stacks

import (
	"fmt"
	"strconv"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/cft"
)

// Kinds of stack, in deployment order.
const (
	Network  = "network"
	Bastion  = "bastion"
	Database = "database"
)

// Order is the deployment order; teardown goes the other way.
var Order = []string{Network, Bastion, Database}

// Stack is one synthesized stack: its template and the parameter values from the configuration.
type Stack struct {
	Kind       string // network, bastion, database
	Name       string // the CloudFormation stack name
	Template   *cft.Template
	Parameters []Param
	// Tags are stack-level tags: CloudFormation propagates them to every resource that takes
	// tags, so the mandatory tags reach the network and bastion resources too.
	Tags []Tag
}

// Tag is one stack-level tag.
type Tag struct {
	Key, Value string
}

// Param is one parameter value, as `aws cloudformation create-stack --parameters` takes it.
type Param struct {
	ParameterKey   string
	ParameterValue string
}

// Builder builds one stack from the configuration.
type Builder func(cfg apgstack.Config) (*Stack, error)

// builder is the builder of a kind: an explicit list, so that what exists never depends on
// which files' init functions ran.
func builder(kind string) (Builder, bool) {
	switch kind {
	case Network:
		return buildNetwork, true
	case Bastion:
		return buildBastion, true
	case Database:
		return buildDatabase, true
	}
	return nil, false
}

// Build builds one stack by kind.
func Build(cfg apgstack.Config, kind string) (*Stack, error) {
	b, ok := builder(kind)
	if !ok {
		return nil, fmt.Errorf("stack %q is not available (known: %v)", kind, Available())
	}
	s, err := b(cfg)
	if err != nil {
		return nil, fmt.Errorf("build %s stack: %w", kind, err)
	}
	externalizePolicies(s.Template)
	applySuppressions(kind, s.Template)
	if err := s.Template.Check(); err != nil {
		return nil, fmt.Errorf("build %s stack: %w", kind, err)
	}
	for _, p := range tagParamValues(cfg) {
		s.Tags = append(s.Tags, Tag{Key: p.ParameterKey, Value: p.ParameterValue})
	}
	return s, nil
}

// All builds every available stack in deployment order.
func All(cfg apgstack.Config) ([]*Stack, error) {
	var out []*Stack
	for _, kind := range Available() {
		s, err := Build(cfg, kind)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Available lists the kinds that have a builder, in deployment order.
func Available() []string {
	var out []string
	for _, k := range Order {
		if _, ok := builder(k); ok {
			out = append(out, k)
		}
	}
	return out
}

// ParameterMap returns the parameter values as a map (for cft.Template.Evaluate).
func (s *Stack) ParameterMap() map[string]string {
	m := make(map[string]string, len(s.Parameters))
	for _, p := range s.Parameters {
		m[p.ParameterKey] = p.ParameterValue
	}
	return m
}

// Shared parameter definitions: the bastion and database stacks take the same values with the
// same constraints, written once here.

func boolString(b bool) string { return strconv.FormatBool(b) }

// stackNameParam is a ParentVPCStack-style parameter.
func stackNameParam(name, description string) *cft.Parameter {
	return &cft.Parameter{Name: name, Type: "String", Description: description,
		MinLength: cft.Int(1), MaxLength: cft.Int(128), AllowedPattern: apgstack.StackNamePattern.String(),
		ConstraintDescription: "must start with a letter; letters, digits and hyphens only; 128 characters at most"}
}

// emailParam is NotificationList / ServiceOwnersEmailContact.
func emailParam(name, description string) *cft.Parameter {
	return &cft.Parameter{Name: name, Type: "String", Description: description,
		AllowedPattern: apgstack.EmailPattern.String(), ConstraintDescription: "provide a valid email address."}
}

// logRetentionParam is LogsRetentionInDays.
func logRetentionParam(name string, def int) *cft.Parameter {
	vals := make([]any, len(apgstack.LogRetentionDays))
	for i, v := range apgstack.LogRetentionDays {
		vals[i] = v
	}
	return &cft.Parameter{Name: name, Type: "Number", Default: def, AllowedValues: vals,
		Description: "Specify the number of days you want to retain log events"}
}

// addTagParameters adds the mandatory tag parameters (EnvironmentStage first) with the sample's
// constraints, and returns their names in order.
func addTagParameters(t *cft.Template) []string {
	stages := anyList(bestpractice.StageNames)
	conf := make([]any, len(apgstack.ConfidentialityValues))
	for i, s := range apgstack.ConfidentialityValues {
		conf[i] = s
	}
	comp := make([]any, len(apgstack.ComplianceValues))
	for i, s := range apgstack.ComplianceValues {
		comp[i] = s
	}
	t.AddParameter(&cft.Parameter{Name: "EnvironmentStage", Type: "String", Default: "dev", AllowedValues: stages,
		Description: "The environment tag is used to designate the Environment Stage of the associated AWS resource."})
	t.AddParameter(&cft.Parameter{Name: "Application", Type: "String", AllowedPattern: apgstack.ApplicationPattern.String(),
		ConstraintDescription: "provide a valid application name containing only letters and spaces",
		Description:           "The Application tag is used to designate the application of the associated AWS resource."})
	t.AddParameter(&cft.Parameter{Name: "ApplicationVersion", Type: "String", Default: "1.0.0", AllowedPattern: apgstack.VersionPattern.String(),
		ConstraintDescription: "provide a valid application version",
		Description:           `The ApplicationVersion tag is used to designate the specific version of the application. Format should be in the Pattern - "#.#.#"`})
	t.AddParameter(&cft.Parameter{Name: "ProjectCostCenter", Type: "String", AllowedPattern: apgstack.CostCenterPattern.String(),
		ConstraintDescription: "provide a valid cost center",
		Description:           "The ProjectCostCenter tag is used to designate the cost center associated with the project of the given AWS resource."})
	t.AddParameter(emailParam("ServiceOwnersEmailContact", "The ServiceOwnersEmailContact tag is used to designate business owner(s) email address associated with the given AWS resource for sending outage or maintenance notifications"))
	t.AddParameter(&cft.Parameter{Name: "Confidentiality", Type: "String", AllowedValues: conf,
		Description: "The Confidentiality tag is used to designate the confidentiality classification of the data that is associated with the resource."})
	t.AddParameter(&cft.Parameter{Name: "Compliance", Type: "String", AllowedValues: comp,
		Description: "The Compliance tag is used to specify the Compliance level for the AWS resource."})
	return bestpractice.MandatoryTags
}

// mandatoryTags is the Tags list (Key/Value) of the mandatory tags, from their parameters, with
// extra tags (such as Name) first.
func mandatoryTags(extra ...map[string]any) []any {
	out := make([]any, 0, len(extra)+len(bestpractice.MandatoryTags))
	for _, e := range extra {
		out = append(out, e)
	}
	for _, k := range bestpractice.MandatoryTags {
		out = append(out, cft.Tag(k, cft.Ref(k)))
	}
	return out
}

// tagParamValues are the configuration's values for the mandatory tag parameters.
func tagParamValues(cfg apgstack.Config) []Param {
	e := cfg.Environment
	return []Param{
		{"EnvironmentStage", e.Stage},
		{"Application", e.Application},
		{"ApplicationVersion", e.ApplicationVersion},
		{"ProjectCostCenter", e.ProjectCostCenter},
		{"ServiceOwnersEmailContact", e.ServiceOwnersEmailContact},
		{"Confidentiality", e.Confidentiality},
		{"Compliance", e.Compliance},
	}
}
