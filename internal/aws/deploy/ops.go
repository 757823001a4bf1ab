package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/apgstack/apgstack/internal/aws/stacks"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"
)

// ErrBadInput marks an operation refused for what it was asked (an unknown role, a target that
// is no reader), before anything was changed; the CLI answers it with exit code 2.
var ErrBadInput = errors.New("bad input")

// FailoverResult is what a failover did.
type FailoverResult struct {
	Cluster   string        `json:"cluster"`
	OldWriter string        `json:"oldWriter"`
	NewWriter string        `json:"newWriter"`
	Duration  time.Duration `json:"duration"`
}

// FailoverInterruptedError is a failover whose wait the user stopped (Ctrl-C). RDS carries on
// with the failover: it cannot be called back.
type FailoverInterruptedError struct {
	Cluster, OldWriter, Region string
	Err                        error
}

func (e *FailoverInterruptedError) Error() string {
	return fmt.Sprintf("stopped waiting for the failover of cluster %s (writer was %s); RDS carries on with it — nothing was cancelled. Check it with `apgstack status --target aws` or `aws rds describe-db-clusters --db-cluster-identifier %s --region %s --query 'DBClusters[0].[Status,DBClusterMembers]'`; do not start another failover before the cluster is available",
		e.Cluster, e.OldWriter, e.Cluster, e.Region)
}

func (e *FailoverInterruptedError) Unwrap() error { return e.Err }

// failoverWait bounds the wait for a failover; Aurora's takes well under a minute.
const failoverWait = 30 * time.Minute

// clusterOfStack finds the Aurora cluster of the database stack.
func (d *Deployer) clusterOfStack(ctx context.Context, databaseStack string) (string, error) {
	s, err := d.describe(ctx, databaseStack)
	if err != nil {
		return "", err
	}
	if s == nil {
		return "", fmt.Errorf("database stack %s not found in %s: deploy it with `apgstack up --target aws`", databaseStack, d.Region)
	}
	c, err := d.clusterOf(ctx, aws.ToString(s.StackId))
	if err != nil {
		return "", err
	}
	if c == "" {
		return "", fmt.Errorf("stack %s holds no Aurora cluster (status %s)", databaseStack, s.StackStatus)
	}
	return c, nil
}

// readCluster returns a cluster's status, writer and readers.
func (d *Deployer) readCluster(ctx context.Context, cluster string) (status, writer string, readers []string, err error) {
	out, err := d.RDS.DescribeDBClusters(ctx, &rds.DescribeDBClustersInput{DBClusterIdentifier: aws.String(cluster)})
	if err != nil {
		return "", "", nil, fmt.Errorf("read cluster %s: %w", cluster, err)
	}
	if len(out.DBClusters) == 0 {
		return "", "", nil, fmt.Errorf("cluster %s not found", cluster)
	}
	c := out.DBClusters[0]
	for _, m := range c.DBClusterMembers {
		if aws.ToBool(m.IsClusterWriter) {
			writer = aws.ToString(m.DBInstanceIdentifier)
		} else {
			readers = append(readers, aws.ToString(m.DBInstanceIdentifier))
		}
	}
	return aws.ToString(c.Status), writer, readers, nil
}

// Failover fails the cluster of the database stack over to a reader (targetInstance, or the one
// RDS picks by promotion tier), as `aws rds failover-db-cluster` does, and waits until the cluster
// is available again with another writer. Ctrl-C stops the wait, not the failover.
func (d *Deployer) Failover(ctx context.Context, databaseStack, targetInstance string) (FailoverResult, error) {
	var res FailoverResult
	cluster, err := d.clusterOfStack(ctx, databaseStack)
	if err != nil {
		return res, err
	}
	res.Cluster = cluster
	status, writer, readers, err := d.readCluster(ctx, cluster)
	if err != nil {
		return res, err
	}
	res.OldWriter = writer
	if len(readers) == 0 {
		return res, fmt.Errorf("cluster %s has a single instance (%s), so there is no reader to fail over to: Aurora with one instance has no failover target (the dev and test stages run one instance; pre-prod and prod have a reader in a second Availability Zone). To restart the writer instead: `aws rds reboot-db-instance --db-instance-identifier %s`", cluster, writer, writer)
	}
	if targetInstance != "" && !slices.Contains(readers, targetInstance) {
		return res, fmt.Errorf("%w: --target-instance %q is not a reader of cluster %s (readers: %s)", ErrBadInput, targetInstance, cluster, strings.Join(readers, ", "))
	}
	if status != "available" {
		return res, fmt.Errorf("cluster %s is %s, not available: wait until it is (`apgstack status --target aws`), then fail over", cluster, status)
	}
	to := targetInstance
	if to == "" {
		to = "the reader RDS picks (" + strings.Join(readers, ", ") + ")"
	}
	if err := d.confirm(fmt.Sprintf("Fail cluster %s over from writer %s to %s? Open sessions on the writer are cut.", cluster, writer, to)); err != nil {
		return res, err
	}
	in := &rds.FailoverDBClusterInput{DBClusterIdentifier: aws.String(cluster)}
	if targetInstance != "" {
		in.TargetDBInstanceIdentifier = aws.String(targetInstance)
	}
	interrupted := func(err error) error {
		return &FailoverInterruptedError{Cluster: cluster, OldWriter: writer, Region: d.Region, Err: err}
	}
	start := time.Now()
	if _, err := d.RDS.FailoverDBCluster(ctx, in); err != nil {
		if ctx.Err() != nil { // the request may have reached RDS: say how to look
			return res, interrupted(ctx.Err())
		}
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorCode() == "InvalidDBClusterStateFault" {
			return res, fmt.Errorf("RDS refused to fail cluster %s over: %s (a cluster fails over only when it is available and has a reader; dev and test run one instance)", cluster, ae.ErrorMessage())
		}
		return res, fmt.Errorf("fail cluster %s over: %w", cluster, err)
	}
	d.msg("%s: failover from %s started", cluster, writer)
	last := ""
	for {
		if err := d.sleep(ctx, d.Poll); err != nil {
			return res, interrupted(err)
		}
		st, w, _, err := d.readCluster(ctx, cluster)
		if err != nil {
			if ctx.Err() != nil {
				return res, interrupted(ctx.Err())
			}
			return res, err
		}
		if st != last {
			d.msg("%s: %s, writer %s", cluster, st, w)
			last = st
		}
		d.View.Tick()
		if st == "available" && w != "" && w != writer {
			res.NewWriter, res.Duration = w, time.Since(start)
			return res, nil
		}
		if time.Since(start) > failoverWait {
			return res, fmt.Errorf("cluster %s is still %s with writer %s after %s: look at its events (`aws rds describe-events --source-type db-cluster --source-identifier %s`)", cluster, st, w, failoverWait, cluster)
		}
	}
}

// SecretRotation is one rotation asked of Secrets Manager.
type SecretRotation struct {
	Role      string `json:"role"`
	SecretArn string `json:"secretArn"`
	VersionID string `json:"versionId,omitempty"`
	// Watch is the command that shows when the rotation is done.
	Watch string `json:"watch"`
}

// RotateSecret asks Secrets Manager to rotate the secret of role (master, owner, rw, ro, or all:
// master first, then the application roles) now, through the rotation function the stack
// configured. It returns once Secrets Manager accepted; the rotation runs on AWS. No secret
// value is read.
func (d *Deployer) RotateSecret(ctx context.Context, databaseStack, role string) ([]SecretRotation, error) {
	var want []string
	for _, r := range stacks.SecretRoles() {
		if role == "all" || role == r.Role {
			want = append(want, r.Role)
		}
	}
	if len(want) == 0 {
		var allowed []string
		for _, r := range stacks.SecretRoles() {
			allowed = append(allowed, r.Role)
		}
		return nil, fmt.Errorf("%w: role %q: allowed are %s, all", ErrBadInput, role, strings.Join(allowed, ", "))
	}
	s, err := d.describe(ctx, databaseStack)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, fmt.Errorf("database stack %s not found in %s: deploy it with `apgstack up --target aws`", databaseStack, d.Region)
	}
	arns, err := d.secretsOf(ctx, aws.ToString(s.StackId))
	if err != nil {
		return nil, err
	}
	for _, o := range s.Outputs {
		if aws.ToString(o.OutputKey) == stacks.OutputSecretArn && aws.ToString(o.OutputValue) != "" {
			arns[stacks.RoleMaster] = aws.ToString(o.OutputValue)
		}
	}
	var todo []SecretRotation
	for _, r := range want {
		arn := arns[r]
		switch {
		case arn != "":
			todo = append(todo, SecretRotation{Role: r, SecretArn: arn})
		case r == stacks.RoleMaster && role != "all":
			return nil, fmt.Errorf("stack %s has no master secret: a cluster restored from a snapshot (DBSnapshotName) keeps the snapshot's master password, which Secrets Manager does not hold", databaseStack)
		case role != "all":
			return nil, fmt.Errorf("stack %s has no secret for role %s: the application roles and their secrets exist only with the bootstrap (database.bootstrapS3Bucket)", databaseStack, r)
		default:
			d.msg("%s: no %s secret in the stack, skipped", databaseStack, r)
		}
	}
	if len(todo) == 0 {
		return nil, fmt.Errorf("stack %s holds no database secret to rotate", databaseStack)
	}
	var done []SecretRotation
	for _, r := range todo {
		out, err := d.SecretsManager.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String(r.SecretArn), RotateImmediately: aws.Bool(true)})
		if err != nil {
			var ae smithy.APIError
			if errors.As(err, &ae) && ae.ErrorCode() == "InvalidRequestException" {
				err = fmt.Errorf("%s (a rotation still under way is retried by Secrets Manager; wait for it)", ae.ErrorMessage())
			}
			return done, fmt.Errorf("rotate the %s secret %s: %w", r.Role, r.SecretArn, err)
		}
		r.VersionID = aws.ToString(out.VersionId)
		r.Watch = fmt.Sprintf("aws secretsmanager describe-secret --secret-id %s --region %s --query '[RotationEnabled,LastRotatedDate]'", r.SecretArn, d.Region)
		d.msg("%s: rotation of the %s secret asked", databaseStack, r.Role)
		done = append(done, r)
	}
	return done, nil
}

// secretsOf maps role to secret ARN from the stack's resources (a secret's physical id is its
// ARN).
func (d *Deployer) secretsOf(ctx context.Context, stackID string) (map[string]string, error) {
	byLogical := map[string]string{}
	for _, r := range stacks.SecretRoles() {
		byLogical[r.LogicalID] = r.Role
	}
	arns := map[string]string{}
	var token *string
	for {
		page, err := d.CFN.ListStackResources(ctx, &cloudformation.ListStackResourcesInput{StackName: aws.String(stackID), NextToken: token})
		if err != nil {
			return nil, fmt.Errorf("list resources of %s: %w", stackID, err)
		}
		for _, r := range page.StackResourceSummaries {
			role, ok := byLogical[aws.ToString(r.LogicalResourceId)]
			if ok && aws.ToString(r.ResourceType) == "AWS::SecretsManager::Secret" && strings.HasPrefix(aws.ToString(r.PhysicalResourceId), "arn:") {
				arns[role] = aws.ToString(r.PhysicalResourceId)
			}
		}
		if page.NextToken == nil {
			return arns, nil
		}
		token = page.NextToken
	}
}
