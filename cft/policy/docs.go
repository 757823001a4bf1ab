package policy

import (
	"fmt"
	"strings"
)

// Markdown renders the rule table as the docs page docs/policy-rules.md; a test keeps the page
// equal to it.
func Markdown() []byte {
	var b strings.Builder
	all := Rules()
	errors := 0
	for _, r := range all {
		if r.Severity == Error {
			errors++
		}
	}
	b.WriteString(`# Best-practice policy rules

<!-- Generated from cft/policy/rules*.go by ` + "`go test ./cft/policy -run TestDocs -update`" + `; do not edit. -->

` + "`apgstack validate --policy FILE...`" + ` checks CloudFormation templates, ours or anyone's, against
the rules below; ` + "`apgstack synth`" + ` runs them on the templates it writes. Each rule comes from AWS's
own guidance: an AWS Security Hub control (RDS.27, KMS.4, EC2.8, ...) or a chapter of a service's
user guide.

` + "```" + `
apgstack validate --policy synth.out/*.yaml          # schema checks, then the policy
apgstack policy check --format sarif *.yaml > p.sarif # SARIF 2.1.0 for code review
apgstack policy check --stage prod --param DBSnapshotName=snap template.json
apgstack policy rules                                # this table
` + "```" + `

## How templates are evaluated

- A template with an ` + "`EnvironmentStage`" + ` parameter is evaluated once per stage (dev, test, pre-prod,
  prod), as CloudFormation would create it: conditions decided, ` + "`Fn::If`" + ` chosen, parameters
  substituted (` + "`--stage`" + ` narrows the stages). A template with a ` + "`DBSnapshotName`" + ` parameter is also
  evaluated with and without a snapshot. Other parameters take the values of the
  ` + "`<template>.parameters.json`" + ` beside the file (as ` + "`synth`" + ` writes it) or of ` + "`--param Key=Value`" + `, else
  their defaults.
- A template without ` + "`EnvironmentStage`" + ` is evaluated once, under the rules of prod (the strictest)
  unless ` + "`--unstaged-as`" + ` names another stage.
- A parameter without a default and without a given value gets a placeholder that satisfies no
  rule, and a value that depends on another resource or stack is never taken as compliant by a
  rule that needs a literal: the finding says the setting "cannot be shown compliant".
- Findings name the file, the stages they were seen in, the logical id, the property path and the
  rule. A finding seen in several stages is reported once with the list of stages.
- Exit status 1 when an unsuppressed error remains; warnings do not fail.
- Output: text (default), ` + "`--output json`" + `, or, with ` + "`apgstack policy check --format sarif`" + `, SARIF 2.1.0
  for code-review tools (suppressed findings carry their reason as the justification).

## Suppressions

A resource may suppress a rule in its ` + "`Metadata`" + `, with a reason a reviewer would accept:

` + "```yaml" + `
Resources:
  Cluster:
    Type: AWS::RDS::DBCluster
    Metadata:
      apgstack:
        suppress:
          - rule: RDS-016
            reason: the master user name is fixed by the application we migrate from
` + "```" + `

Suppressed findings are listed separately with their reasons, never hidden (in SARIF they carry
an in-source suppression with the reason as justification). A suppression without a reason, or
naming a rule that does not exist, is itself an error (` + SuppressionRule + `).

## Rules
`)
	fmt.Fprintf(&b, "\n%d rules: %d errors, %d warnings.\n\n", len(all), errors, len(all)-errors)
	b.WriteString("| Id | Severity | Rule | Source |\n|----|----------|------|--------|\n")
	for _, r := range all {
		fmt.Fprintf(&b, "| [%s](#%s) | %s | %s | %s |\n", r.ID, strings.ToLower(r.ID), r.Severity, cell(r.Title), cell(r.Source))
	}
	for _, r := range all {
		fmt.Fprintf(&b, "\n### %s\n\n**%s** (%s)\n\n", r.ID, r.Title, r.Severity)
		fmt.Fprintf(&b, "- Why: %s.\n", r.Rationale)
		fmt.Fprintf(&b, "- Fix: %s.\n", r.Fix)
		fmt.Fprintf(&b, "- Resource types: %s.\n", strings.Join(code(r.Types), ", "))
		if r.Stages != "" {
			fmt.Fprintf(&b, "- Stages: %s.\n", r.Stages)
		}
		fmt.Fprintf(&b, "- Source: %s.\n", r.Source)
	}
	return []byte(b.String())
}

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func code(types []string) []string {
	out := make([]string, len(types))
	for i, t := range types {
		if strings.HasPrefix(t, "AWS::") {
			out[i] = "`" + t + "`"
		} else {
			out[i] = t
		}
	}
	return out
}
