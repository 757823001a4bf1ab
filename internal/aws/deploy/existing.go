package deploy

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/apgstack/apgstack/cft"
	"github.com/apgstack/apgstack/internal/aws/stacks"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/rds"
)

// Stacks created by something else first — the AWS sample templates, an earlier apgstack —
// meet two obstacles on their first update, handled before any change set:
//   - a custom resource of another type under the same logical id: CloudFormation cannot change
//     a custom resource's type, but the function behind it does not care, so the update keeps
//     the type the stack has;
//   - a log group the template now manages that RDS already made (the cluster exported its logs
//     before the stack held the group): creating it would fail, so up refuses with the steps.

// ExistingLogGroupError refuses an update that would create log groups RDS already made.
type ExistingLogGroupError struct {
	Stack     string
	LogGroups map[string]string // logical id -> log group name
}

func (e *ExistingLogGroupError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "stack %s cannot be updated yet: the template now manages the cluster's exported-log groups, and RDS already made them outside the stack:", e.Stack)
	for _, id := range slices.Sorted(maps.Keys(e.LogGroups)) {
		name := e.LogGroups[id]
		fmt.Fprintf(&b, "\n  %s (%s)", name, id)
	}
	b.WriteString("\nEither import them into the stack (CloudFormation console: Stack actions > Import resources into stack, with each log group's name as its identifier), or delete them after saving what you need:")
	for _, id := range slices.Sorted(maps.Keys(e.LogGroups)) {
		fmt.Fprintf(&b, "\n  aws logs delete-log-group --log-group-name %s", e.LogGroups[id])
	}
	b.WriteString("\nthen run `apgstack up --target aws` again.")
	return b.String()
}

func isCustom(typ string) bool {
	return strings.HasPrefix(typ, "Custom::") || typ == "AWS::CloudFormation::CustomResource"
}

// adaptToExisting returns the stack to update an existing stack with: custom resources keep the
// stack's types. It refuses, with the steps, when the update would create log groups RDS has
// already made.
func (d *Deployer) adaptToExisting(ctx context.Context, st *stacks.Stack, stackID string) (*stacks.Stack, error) {
	have := map[string][2]string{} // logical id -> type, physical id
	var token *string
	for {
		page, err := d.CFN.ListStackResources(ctx, &cloudformation.ListStackResourcesInput{StackName: aws.String(stackID), NextToken: token})
		if err != nil {
			return nil, fmt.Errorf("list resources of %s: %w", st.Name, err)
		}
		for _, r := range page.StackResourceSummaries {
			have[aws.ToString(r.LogicalResourceId)] = [2]string{aws.ToString(r.ResourceType), aws.ToString(r.PhysicalResourceId)}
		}
		if page.NextToken == nil {
			break
		}
		token = page.NextToken
	}
	out := st
	for _, r := range st.Template.Resources {
		old, ok := have[r.Name]
		if !ok || old[0] == r.Type || !isCustom(old[0]) || !isCustom(r.Type) {
			continue
		}
		if out == st {
			c := *st
			c.Template = st.Template.Clone()
			out = &c
		}
		out.Template.Resource(r.Name).Type = old[0]
		d.msg("%s: %s keeps its type %s (CloudFormation cannot change a custom resource's type; the function behind it is the same)", st.Name, r.Name, old[0])
	}
	if err := d.existingLogGroups(ctx, st, have); err != nil {
		return nil, err
	}
	return out, nil
}

// existingLogGroups refuses to add, for a cluster the stack already holds, log groups of its
// exported logs that RDS made.
func (d *Deployer) existingLogGroups(ctx context.Context, st *stacks.Stack, have map[string][2]string) error {
	var clusterID, clusterLogical string
	for logical, r := range have {
		if r[0] == "AWS::RDS::DBCluster" {
			clusterLogical, clusterID = logical, r[1]
		}
	}
	if clusterID == "" {
		return nil
	}
	want := map[string]string{} // logical id -> name, for groups the stack lacks
	for _, r := range st.Template.Resources {
		if _, ok := have[r.Name]; ok || r.Type != "AWS::Logs::LogGroup" {
			continue
		}
		fn, arg, _ := cft.Intrinsic(r.Properties["LogGroupName"])
		sub, _ := arg.(string)
		if fn == "Fn::Sub" && strings.HasPrefix(sub, "/aws/rds/cluster/") {
			want[r.Name] = strings.ReplaceAll(sub, "${"+clusterLogical+"}", clusterID)
		}
	}
	if len(want) == 0 {
		return nil
	}
	out, err := d.RDS.DescribeDBClusters(ctx, &rds.DescribeDBClustersInput{DBClusterIdentifier: aws.String(clusterID)})
	if err != nil || len(out.DBClusters) == 0 {
		return nil // no cluster to export logs: nothing made them
	}
	exported := out.DBClusters[0].EnabledCloudwatchLogsExports
	made := map[string]string{}
	for id, name := range want {
		if slices.Contains(exported, name[strings.LastIndex(name, "/")+1:]) {
			made[id] = name
		}
	}
	if len(made) > 0 {
		return &ExistingLogGroupError{Stack: st.Name, LogGroups: made}
	}
	return nil
}
