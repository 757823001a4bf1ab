package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/apgstack/apgstack/internal/aws/stacks"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/smithy-go"
)

// DownOptions tune Down.
type DownOptions struct {
	// DisableDeletionProtection lifts the cluster's deletion protection before deleting.
	DisableDeletionProtection bool
}

// DownResult is what Down did.
type DownResult struct {
	Deleted []string `json:"deleted"`
	Missing []string `json:"missing,omitempty"`
	// FinalSnapshot is the cluster snapshot CloudFormation kept when it deleted the cluster.
	FinalSnapshot string `json:"finalSnapshot,omitempty"`
}

// ImportedError refuses a teardown because a stack outside it imports an export.
type ImportedError struct {
	Stack, Export string
	Importers     []string
}

func (e *ImportedError) Error() string {
	return fmt.Sprintf("cannot delete stack %s: its export %s is still imported by stack %s; delete %s first (`aws cloudformation delete-stack --stack-name %s`, or `apgstack down` with its configuration)",
		e.Stack, e.Export, strings.Join(e.Importers, ", "), e.Importers[0], e.Importers[0])
}

// ProtectedError refuses a teardown because the cluster has deletion protection on.
type ProtectedError struct{ Stack, Cluster string }

func (e *ProtectedError) Error() string {
	return fmt.Sprintf("cluster %s of stack %s has deletion protection on (pre-prod and prod stages turn it on): run `apgstack down --target aws --disable-deletion-protection` to lift it and delete, or lift it yourself with `aws rds modify-db-cluster --db-cluster-identifier %s --no-deletion-protection --apply-immediately`",
		e.Cluster, e.Stack, e.Cluster)
}

// Down deletes the stacks in the order given (database, bastion, network). Before deleting
// anything it refuses when a stack outside the list imports one of their exports, and when the
// cluster is protected from deletion (unless told to lift the protection).
func (d *Deployer) Down(ctx context.Context, refs []StackRef, o DownOptions) (*DownResult, error) {
	res := &DownResult{}
	type live struct {
		ref     StackRef
		id      string
		cluster string
	}
	var todo []live
	inSet := map[string]bool{}
	for _, r := range refs {
		inSet[r.Name] = true
	}
	for _, r := range refs {
		s, err := d.describe(ctx, r.Name)
		if err != nil {
			return res, err
		}
		if s == nil {
			d.msg("%s: not found, nothing to delete", r.Name)
			res.Missing = append(res.Missing, r.Name)
			continue
		}
		if st := string(s.StackStatus); strings.HasSuffix(st, "_IN_PROGRESS") && st != "REVIEW_IN_PROGRESS" && st != "DELETE_IN_PROGRESS" {
			return res, &StackError{Stack: r.Name, Status: st, Hint: stuckHint(r.Name, st)}
		}
		for _, out := range s.Outputs {
			export := aws.ToString(out.ExportName)
			if export == "" {
				continue
			}
			importers, err := d.importers(ctx, export)
			if err != nil {
				return res, err
			}
			var outside []string
			for _, imp := range importers {
				if !inSet[imp] {
					outside = append(outside, imp)
				}
			}
			if len(outside) > 0 {
				return res, &ImportedError{Stack: r.Name, Export: export, Importers: outside}
			}
		}
		l := live{ref: r, id: aws.ToString(s.StackId)}
		if l.cluster, err = d.clusterOf(ctx, l.id); err != nil {
			return res, err
		}
		todo = append(todo, l)
	}
	if len(todo) == 0 {
		return res, nil
	}
	var protected []live
	for _, l := range todo {
		if l.cluster == "" {
			continue
		}
		out, err := d.RDS.DescribeDBClusters(ctx, &rds.DescribeDBClustersInput{DBClusterIdentifier: aws.String(l.cluster)})
		if err != nil {
			var ae smithy.APIError
			if errors.As(err, &ae) && ae.ErrorCode() == "DBClusterNotFoundFault" {
				continue
			}
			return res, fmt.Errorf("read cluster %s: %w", l.cluster, err)
		}
		if len(out.DBClusters) > 0 && aws.ToBool(out.DBClusters[0].DeletionProtection) {
			if !o.DisableDeletionProtection {
				return res, &ProtectedError{Stack: l.ref.Name, Cluster: l.cluster}
			}
			protected = append(protected, l)
		}
	}
	var names []string
	for _, l := range todo {
		names = append(names, l.ref.Name)
	}
	q := fmt.Sprintf("Delete stacks %s in %s? The cluster's final snapshot is kept", strings.Join(names, ", "), d.Region)
	if len(protected) > 0 {
		q += "; deletion protection of the cluster is lifted first"
	}
	if err := d.confirm(q + "."); err != nil {
		return res, err
	}
	for _, l := range protected {
		if _, err := d.RDS.ModifyDBCluster(ctx, &rds.ModifyDBClusterInput{DBClusterIdentifier: aws.String(l.cluster),
			DeletionProtection: aws.Bool(false), ApplyImmediately: aws.Bool(true)}); err != nil {
			return res, fmt.Errorf("lift deletion protection of cluster %s: %w", l.cluster, err)
		}
		d.msg("%s: deletion protection of cluster %s lifted", l.ref.Name, l.cluster)
	}
	for _, l := range todo {
		del := d.deleteAndWait
		if l.ref.Kind == stacks.Network {
			del = d.deleteNetwork
		}
		if err := del(ctx, l.ref.Name, l.id, "run `apgstack down --target aws` again once it has finished"); err != nil {
			return res, err
		}
		res.Deleted = append(res.Deleted, l.ref.Name)
		if l.cluster != "" {
			snap, err := d.finalSnapshot(ctx, l.cluster)
			if err != nil {
				return res, err
			}
			res.FinalSnapshot = snap
			if snap != "" {
				d.msg("%s: final snapshot kept: %s (restore it with database.snapshotName: %s)", l.ref.Name, snap, snap)
			} else {
				d.msg("%s: no final snapshot of cluster %s was found", l.ref.Name, l.cluster)
			}
		}
	}
	return res, nil
}

// importers lists the stacks importing an export.
func (d *Deployer) importers(ctx context.Context, export string) ([]string, error) {
	var out []string
	var token *string
	for {
		page, err := d.CFN.ListImports(ctx, &cloudformation.ListImportsInput{ExportName: aws.String(export), NextToken: token})
		if err != nil {
			var ae smithy.APIError
			if errors.As(err, &ae) && strings.Contains(ae.ErrorMessage(), "is not imported by any stack") {
				return out, nil
			}
			return nil, fmt.Errorf("list imports of %s: %w", export, err)
		}
		out = append(out, page.Imports...)
		if page.NextToken == nil {
			return out, nil
		}
		token = page.NextToken
	}
}

// clusterOf finds the Aurora cluster a stack holds, if any.
func (d *Deployer) clusterOf(ctx context.Context, stackID string) (string, error) {
	var token *string
	for {
		page, err := d.CFN.ListStackResources(ctx, &cloudformation.ListStackResourcesInput{StackName: aws.String(stackID), NextToken: token})
		if err != nil {
			return "", fmt.Errorf("list resources of %s: %w", stackID, err)
		}
		for _, r := range page.StackResourceSummaries {
			if aws.ToString(r.ResourceType) == "AWS::RDS::DBCluster" && r.ResourceStatus != cfntypes.ResourceStatusDeleteComplete {
				return aws.ToString(r.PhysicalResourceId), nil
			}
		}
		if page.NextToken == nil {
			return "", nil
		}
		token = page.NextToken
	}
}

// finalSnapshot is the newest manual snapshot of a deleted cluster: the one its DeletionPolicy
// kept.
func (d *Deployer) finalSnapshot(ctx context.Context, cluster string) (string, error) {
	out, err := d.RDS.DescribeDBClusterSnapshots(ctx, &rds.DescribeDBClusterSnapshotsInput{DBClusterIdentifier: aws.String(cluster), SnapshotType: aws.String("manual")})
	if err != nil {
		return "", fmt.Errorf("find the final snapshot of cluster %s: %w", cluster, err)
	}
	best := ""
	var bestAt = aws.ToTime(nil)
	for _, s := range out.DBClusterSnapshots {
		if at := aws.ToTime(s.SnapshotCreateTime); best == "" || at.After(bestAt) {
			best, bestAt = aws.ToString(s.DBClusterSnapshotIdentifier), at
		}
	}
	return best, nil
}
