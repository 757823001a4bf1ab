package stacks

import (
	"slices"

	"github.com/apgstack/apgstack/cft"
)

// Deliberate choices that scanners flag. Users run cdk-nag, cfn_nag, checkov and cfn-lint on the
// templates; each choice below is written once, with its reason, and rendered into the resource's
// Metadata in the form each tool reads (and, when apgstack's own policy checks have a rule for
// it, in Metadata.apgstack.suppress), so one reason serves all.
type suppression struct {
	Stack, Resource string
	Reason          string
	// Rule ids per tool; an empty list leaves that tool's metadata out.
	Policy, CdkNag, CfnNag, Checkov, CfnLint []string
	// CdkNagAppliesTo narrows a cdk-nag suppression (e.g. to one managed policy).
	CdkNagAppliesTo []string
}

// suppressions is the list.
var suppressions = []suppression{
	{Stack: Bastion, Resource: bastionRole,
		Reason:          "AmazonSSMManagedInstanceCore is the policy AWS maintains for exactly the Session Manager and SSM agent calls the bastion makes; a copy would drift from the agent's needs",
		CdkNag:          []string{"AwsSolutions-IAM4"},
		CdkNagAppliesTo: []string{"Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore"}},
	{Stack: Database, Resource: dbMonitoringRole,
		Reason:          "AmazonRDSEnhancedMonitoringRole is the service role policy AWS maintains for RDS enhanced monitoring: it writes only to the RDSOSMetrics log group",
		CdkNag:          []string{"AwsSolutions-IAM4"},
		CdkNagAppliesTo: []string{"Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"}},
	{Stack: Bastion, Resource: bastionLT,
		Reason:  "the bastion is the one host meant to be reached from outside: a public address in a public subnet, its security group and the public network ACL admit SSH only from RemoteAccessCIDR",
		Checkov: []string{"CKV_AWS_88"}},
	{Stack: Database, Resource: dbBootstrapFn,
		Reason:  "the bootstrap zip is built reproducibly from the module's source and named after its SHA-256 (LambdaBootStrapS3Key), so the stack names exactly the code it runs; Lambda code signing would need an AWS Signer profile outside the stack",
		Checkov: []string{"CKV_AWS_272"}},
	{Stack: Database, Resource: dbBootstrapVPCAccess,
		Reason:  "ec2:DescribeNetworkInterfaces and ec2:DescribeSubnets take no resource-level permissions, and Lambda chooses the ids of the function's network interfaces; creation is limited to the private subnets and the Lambda security group, the rest to interfaces of the VPC",
		CdkNag:  []string{"AwsSolutions-IAM5"},
		CfnNag:  []string{"W13"},
		Checkov: []string{"CKV_AWS_111"}},
}

// applySuppressions renders the list into the stack's resources' Metadata.
func applySuppressions(kind string, t *cft.Template) {
	for _, s := range suppressions {
		r := t.Resource(s.Resource)
		if s.Stack != kind || r == nil {
			continue
		}
		if r.Metadata == nil {
			r.Metadata = map[string]any{}
		}
		entries := func(ids []string, reasonKey string, extra map[string]any) []any {
			var out []any
			for _, id := range ids {
				e := map[string]any{"id": id, reasonKey: s.Reason}
				for k, v := range extra {
					e[k] = v
				}
				out = append(out, e)
			}
			return out
		}
		if len(s.Policy) > 0 {
			md, _ := r.Metadata["apgstack"].(map[string]any)
			if md == nil {
				md = map[string]any{}
				r.Metadata["apgstack"] = md
			}
			list, _ := md["suppress"].([]any)
			for _, id := range s.Policy {
				list = append(list, map[string]any{"rule": id, "reason": s.Reason})
			}
			md["suppress"] = list
		}
		if len(s.CdkNag) > 0 {
			var extra map[string]any
			if len(s.CdkNagAppliesTo) > 0 {
				extra = map[string]any{"applies_to": anyList(s.CdkNagAppliesTo)}
			}
			r.Metadata["cdk_nag"] = map[string]any{"rules_to_suppress": entries(s.CdkNag, "reason", extra)}
		}
		if len(s.CfnNag) > 0 {
			r.Metadata["cfn_nag"] = map[string]any{"rules_to_suppress": entries(s.CfnNag, "reason", nil)}
		}
		if len(s.Checkov) > 0 {
			r.Metadata["checkov"] = map[string]any{"skip": entries(s.Checkov, "comment", nil)}
		}
		if len(s.CfnLint) > 0 {
			r.Metadata["cfn-lint"] = map[string]any{"config": map[string]any{"ignore_checks": anyList(slices.Clone(s.CfnLint))}}
		}
	}
}
