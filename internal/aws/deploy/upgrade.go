package deploy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/bestpractice"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
)

// Upgrades the way AWS recommends them: a minor version through the stack (the stack's
// DBEngineVersion changes, CloudFormation modifies the cluster in place), a major version
// through an RDS Blue/Green deployment, so that the write outage is the switchover's (about a
// minute) instead of the in-place upgrade's, and the old cluster stays until the user lets go.

// UpgradePlan says how a cluster goes from one version to another.
type UpgradePlan struct {
	From  string `json:"from"`
	To    string `json:"to"`
	Major bool   `json:"major"`
	// Family is the parameter group family of the target (aurora-postgresql17).
	Family string `json:"family"`
	// How is "stack" (minor: `up` with the new database.engineVersion) or "blue-green" (major).
	How string `json:"how"`
}

// PlanUpgrade checks that to is one of the Region's valid upgrade targets of from (o is the
// live offer; nil checks the calendar only) and classifies the upgrade.
func PlanUpgrade(o *Offer, from, to string) (UpgradePlan, error) {
	p := UpgradePlan{From: from, To: to, Major: apgstack.EngineMajor(from) != apgstack.EngineMajor(to), Family: apgstack.EngineFamily(to), How: "stack"}
	if p.Major {
		p.How = "blue-green"
	}
	if from == to {
		return p, fmt.Errorf("%w: --engine-version %s is the version the cluster runs", ErrBadInput, to)
	}
	if _, ok := bestpractice.MajorOf(to); !ok {
		return p, fmt.Errorf("%w: --engine-version %q is not allowed: one of %s", ErrBadInput, to, strings.Join(bestpractice.EngineVersions(), ", "))
	}
	if o == nil {
		if !newer(to, from) {
			return p, fmt.Errorf("%w: --engine-version %s is older than %s: Aurora does not downgrade", ErrBadInput, to, from)
		}
		return p, nil
	}
	v := o.Version(from)
	if v == nil {
		return p, fmt.Errorf("the cluster's version %s is not offered in %s any more: ask AWS Support how to move it", from, o.Region)
	}
	targets := append(slices.Clone(v.MinorTargets), v.MajorTargets...)
	if len(targets) == 0 {
		return p, fmt.Errorf("%w: %s has no upgrade target in %s: it is the newest version the Region offers", ErrBadInput, from, o.Region)
	}
	if !slices.Contains(targets, to) {
		return p, fmt.Errorf("%w: --engine-version %q is not a valid upgrade target of %s in %s: the Region offers %s", ErrBadInput, to, from, o.Region, strings.Join(targets, ", "))
	}
	return p, nil
}

// newer reports whether version a is after b ("17.7" > "16.11").
func newer(a, b string) bool {
	all := bestpractice.EngineVersions()
	return slices.Index(all, a) > slices.Index(all, b)
}

// BlueGreenOptions tune MajorUpgrade.
type BlueGreenOptions struct {
	Cluster string // DB cluster identifier (the blue side)
	To      string // target engine version
	// Name names the deployment and the new parameter groups; empty derives it from the
	// cluster and the target major.
	Name string
	// SwitchoverTimeout is RDS's limit for the switchover (it rolls back past it); 0 is 300 s.
	SwitchoverTimeout time.Duration
	// ConfirmTimeout bounds the wait for the user's go-ahead to switch over; 0 is 15 minutes.
	// Without an answer in time the green side is left as it is, and the way on is printed.
	ConfirmTimeout time.Duration
	// DeleteBlue deletes the old (blue) cluster after the switchover, with a final snapshot.
	DeleteBlue bool
	// PgauditLog is the instance parameter group's pgaudit.log (empty: best-practice default).
	PgauditLog string
}

// BlueGreenResult reports a Blue/Green upgrade.
type BlueGreenResult struct {
	ID       string   `json:"id"`
	Statuses []string `json:"statuses"` // every status seen, in order, without repeats
	// Switched lists what the switchover moved: "blue ARN -> green ARN".
	Switched []string `json:"switched"`
	// WriteOutage is the upper bound of the time writes were refused: from the switchover's
	// start to its completion as polled.
	WriteOutage   time.Duration `json:"writeOutage"`
	OldCluster    string        `json:"oldCluster,omitempty"`
	BlueDeleted   bool          `json:"blueDeleted"`
	FinalSnapshot string        `json:"finalSnapshot,omitempty"`
}

const blueGreenWait = 6 * time.Hour // provisioning a green copy of a large cluster takes hours

// MajorUpgrade upgrades a cluster's major version through a Blue/Green deployment: parameter
// groups of the new family with the best-practice settings first, then the green side created
// and waited for until AVAILABLE (in sync), the switchover shown and confirmed (within
// ConfirmTimeout), the switchover waited for until SWITCHOVER_COMPLETED, the write outage
// reported, and the blue side deleted when asked.
func (d *Deployer) MajorUpgrade(ctx context.Context, o BlueGreenOptions) (*BlueGreenResult, error) {
	res := &BlueGreenResult{}
	family := apgstack.EngineFamily(o.To)
	name := o.Name
	if name == "" {
		name = fmt.Sprintf("%s-to-%s", o.Cluster, apgstack.EngineMajor(o.To))
	}
	clusterPG, instancePG, err := d.createParameterGroups(ctx, name, family, o.PgauditLog)
	if err != nil {
		return res, err
	}
	arn, err := d.clusterArn(ctx, o.Cluster)
	if err != nil {
		return res, err
	}
	out, err := d.RDS.CreateBlueGreenDeployment(ctx, &rds.CreateBlueGreenDeploymentInput{
		BlueGreenDeploymentName:           aws.String(name),
		Source:                            aws.String(arn),
		TargetEngineVersion:               aws.String(o.To),
		TargetDBClusterParameterGroupName: aws.String(clusterPG),
		TargetDBParameterGroupName:        aws.String(instancePG),
	})
	if err != nil {
		return res, fmt.Errorf("create the Blue/Green deployment of %s to %s: %w", o.Cluster, o.To, err)
	}
	res.ID = aws.ToString(out.BlueGreenDeployment.BlueGreenDeploymentIdentifier)
	d.msg("%s: Blue/Green deployment %s created: the green side is being provisioned at %s", o.Cluster, res.ID, o.To)

	bg, err := d.waitBlueGreen(ctx, res, "AVAILABLE", "PROVISIONING")
	if err != nil {
		return res, err
	}
	for _, s := range bg.SwitchoverDetails {
		res.Switched = append(res.Switched, aws.ToString(s.SourceMember)+" -> "+aws.ToString(s.TargetMember))
	}
	fmt.Fprintf(d.Out, "The switchover moves (writes pause while it runs, typically under a minute):\n  %s\n", strings.Join(res.Switched, "\n  "))
	if err := d.confirmWithin(ctx, o.ConfirmTimeout, fmt.Sprintf("Switch %s over to %s now?", o.Cluster, o.To)); err != nil {
		return res, fmt.Errorf("%w; the green side stays in sync: switch over later with `aws rds switchover-blue-green-deployment --blue-green-deployment-identifier %s --region %s`, or remove it with `aws rds delete-blue-green-deployment --blue-green-deployment-identifier %s --delete-target --region %s`",
			err, res.ID, d.Region, res.ID, d.Region)
	}
	timeout := o.SwitchoverTimeout
	if timeout == 0 {
		timeout = 300 * time.Second
	}
	start := d.now()
	if _, err := d.RDS.SwitchoverBlueGreenDeployment(ctx, &rds.SwitchoverBlueGreenDeploymentInput{
		BlueGreenDeploymentIdentifier: aws.String(res.ID), SwitchoverTimeout: aws.Int32(int32(timeout / time.Second))}); err != nil {
		return res, fmt.Errorf("switch over %s: %w", res.ID, err)
	}
	if _, err := d.waitBlueGreen(ctx, res, "SWITCHOVER_COMPLETED", "SWITCHOVER_IN_PROGRESS", "AVAILABLE"); err != nil {
		return res, err
	}
	res.WriteOutage = d.now().Sub(start)
	res.OldCluster = o.Cluster + "-old1"
	d.msg("%s: now %s; writes paused for at most %s; the old cluster is %s", o.Cluster, o.To, res.WriteOutage.Round(time.Second), res.OldCluster)
	if _, err := d.RDS.DeleteBlueGreenDeployment(ctx, &rds.DeleteBlueGreenDeploymentInput{BlueGreenDeploymentIdentifier: aws.String(res.ID)}); err != nil {
		return res, fmt.Errorf("delete the finished Blue/Green deployment %s (the clusters stay): %w", res.ID, err)
	}
	if o.DeleteBlue {
		if err := d.deleteOldCluster(ctx, res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// createParameterGroups makes the cluster and instance parameter groups of the new family with
// the best-practice entries (the stack's groups are of the old family).
func (d *Deployer) createParameterGroups(ctx context.Context, name, family, pgauditLog string) (clusterPG, instancePG string, err error) {
	clusterPG, instancePG = name+"-cluster", name+"-instance"
	desc := aws.String("apgstack best-practice parameters for " + family + " (Blue/Green upgrade " + name + ")")
	if _, err := d.RDS.CreateDBClusterParameterGroup(ctx, &rds.CreateDBClusterParameterGroupInput{
		DBClusterParameterGroupName: aws.String(clusterPG), DBParameterGroupFamily: aws.String(family), Description: desc}); err != nil {
		return "", "", fmt.Errorf("create cluster parameter group %s (%s): %w", clusterPG, family, err)
	}
	if _, err := d.RDS.ModifyDBClusterParameterGroup(ctx, &rds.ModifyDBClusterParameterGroupInput{
		DBClusterParameterGroupName: aws.String(clusterPG), Parameters: rdsParameters(bestpractice.ClusterParameters)}); err != nil {
		return "", "", fmt.Errorf("set cluster parameter group %s: %w", clusterPG, err)
	}
	if _, err := d.RDS.CreateDBParameterGroup(ctx, &rds.CreateDBParameterGroupInput{
		DBParameterGroupName: aws.String(instancePG), DBParameterGroupFamily: aws.String(family), Description: desc}); err != nil {
		return "", "", fmt.Errorf("create parameter group %s (%s): %w", instancePG, family, err)
	}
	// ModifyDBParameterGroup takes at most 20 parameters a call.
	params := rdsParameters(bestpractice.InstanceParameterGroup(pgauditLog))
	for len(params) > 0 {
		n := min(20, len(params))
		if _, err := d.RDS.ModifyDBParameterGroup(ctx, &rds.ModifyDBParameterGroupInput{
			DBParameterGroupName: aws.String(instancePG), Parameters: params[:n]}); err != nil {
			return "", "", fmt.Errorf("set parameter group %s: %w", instancePG, err)
		}
		params = params[n:]
	}
	return clusterPG, instancePG, nil
}

func rdsParameters(ps []bestpractice.Parameter) []rdstypes.Parameter {
	out := make([]rdstypes.Parameter, len(ps))
	for i, p := range ps {
		method := rdstypes.ApplyMethodImmediate
		if p.Static {
			method = rdstypes.ApplyMethodPendingReboot
		}
		out[i] = rdstypes.Parameter{ParameterName: aws.String(p.Name), ParameterValue: aws.String(p.Value), ApplyMethod: method}
	}
	return out
}

func (d *Deployer) clusterArn(ctx context.Context, cluster string) (string, error) {
	out, err := d.RDS.DescribeDBClusters(ctx, &rds.DescribeDBClustersInput{DBClusterIdentifier: aws.String(cluster)})
	if err != nil {
		return "", fmt.Errorf("read cluster %s: %w", cluster, err)
	}
	if len(out.DBClusters) == 0 {
		return "", fmt.Errorf("cluster %s not found in %s", cluster, d.Region)
	}
	return aws.ToString(out.DBClusters[0].DBClusterArn), nil
}

// waitBlueGreen polls the deployment until it reaches want; a status outside want and pass
// (PROVISIONING_FAILED, SWITCHOVER_FAILED, INVALID_CONFIGURATION, ...) is a failure.
func (d *Deployer) waitBlueGreen(ctx context.Context, res *BlueGreenResult, want string, pass ...string) (*rdstypes.BlueGreenDeployment, error) {
	ctx, cancel := context.WithTimeout(ctx, blueGreenWait)
	defer cancel()
	for {
		out, err := d.RDS.DescribeBlueGreenDeployments(ctx, &rds.DescribeBlueGreenDeploymentsInput{BlueGreenDeploymentIdentifier: aws.String(res.ID)})
		if err != nil {
			return nil, fmt.Errorf("read Blue/Green deployment %s: %w", res.ID, err)
		}
		if len(out.BlueGreenDeployments) == 0 {
			return nil, fmt.Errorf("Blue/Green deployment %s is gone", res.ID)
		}
		bg := out.BlueGreenDeployments[0]
		status := aws.ToString(bg.Status)
		if len(res.Statuses) == 0 || res.Statuses[len(res.Statuses)-1] != status {
			res.Statuses = append(res.Statuses, status)
			d.msg("%s: %s", res.ID, status)
		}
		switch {
		case status == want:
			return &bg, nil
		case !slices.Contains(pass, status):
			return nil, fmt.Errorf("Blue/Green deployment %s is %s (%s): see `aws rds describe-blue-green-deployments --blue-green-deployment-identifier %s --region %s`",
				res.ID, status, aws.ToString(bg.StatusDetails), res.ID, d.Region)
		}
		if err := d.sleep(ctx, d.Poll); err != nil {
			return nil, fmt.Errorf("stopped waiting for Blue/Green deployment %s (%s); RDS carries on: %w", res.ID, status, err)
		}
	}
}

// confirmWithin asks, and takes no answer within the time-out as a no.
func (d *Deployer) confirmWithin(ctx context.Context, timeout time.Duration, q string) error {
	if timeout == 0 {
		timeout = 15 * time.Minute
	}
	done := make(chan error, 1)
	go func() { done <- d.confirm(q) }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return fmt.Errorf("no answer within %s: not switched over", timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// deleteOldCluster removes the blue side after the switchover: deletion protection off, its
// instances, then the cluster with a final snapshot.
func (d *Deployer) deleteOldCluster(ctx context.Context, res *BlueGreenResult) error {
	old := res.OldCluster
	if err := d.confirm(fmt.Sprintf("Delete the old cluster %s (a final snapshot is kept)?", old)); err != nil {
		return fmt.Errorf("%w; the old cluster %s stays: delete it later with `aws rds delete-db-cluster`", err, old)
	}
	out, err := d.RDS.DescribeDBClusters(ctx, &rds.DescribeDBClustersInput{DBClusterIdentifier: aws.String(old)})
	if err != nil || len(out.DBClusters) == 0 {
		return fmt.Errorf("read the old cluster %s: %v", old, err)
	}
	c := out.DBClusters[0]
	if aws.ToBool(c.DeletionProtection) {
		if _, err := d.RDS.ModifyDBCluster(ctx, &rds.ModifyDBClusterInput{DBClusterIdentifier: aws.String(old), DeletionProtection: aws.Bool(false), ApplyImmediately: aws.Bool(true)}); err != nil {
			return fmt.Errorf("lift the old cluster %s's deletion protection: %w", old, err)
		}
	}
	for _, m := range c.DBClusterMembers {
		if _, err := d.RDS.DeleteDBInstance(ctx, &rds.DeleteDBInstanceInput{DBInstanceIdentifier: m.DBInstanceIdentifier}); err != nil {
			return fmt.Errorf("delete the old instance %s: %w", aws.ToString(m.DBInstanceIdentifier), err)
		}
	}
	// The cluster can be deleted only once its instances are gone.
	for {
		out, err := d.RDS.DescribeDBClusters(ctx, &rds.DescribeDBClustersInput{DBClusterIdentifier: aws.String(old)})
		if err != nil {
			return fmt.Errorf("read the old cluster %s: %w", old, err)
		}
		if len(out.DBClusters) == 0 || len(out.DBClusters[0].DBClusterMembers) == 0 {
			break
		}
		if err := d.sleep(ctx, d.Poll); err != nil {
			return fmt.Errorf("stopped waiting for the old instances of %s to go: %w", old, err)
		}
	}
	res.FinalSnapshot = old + "-final-" + d.now().UTC().Format("20060102-1504")
	if _, err := d.RDS.DeleteDBCluster(ctx, &rds.DeleteDBClusterInput{DBClusterIdentifier: aws.String(old), FinalDBSnapshotIdentifier: aws.String(res.FinalSnapshot)}); err != nil {
		return fmt.Errorf("delete the old cluster %s: %w", old, err)
	}
	res.BlueDeleted = true
	d.msg("%s deleted; final snapshot %s", old, res.FinalSnapshot)
	return nil
}

// UpgradeResult is what Upgrade did: the plan, and for a major version the Blue/Green report.
type UpgradeResult struct {
	Plan      UpgradePlan      `json:"plan"`
	BlueGreen *BlueGreenResult `json:"blueGreen,omitempty"`
}

// Upgrade is `apgstack upgrade --engine-version X --target aws`: it reads the cluster of the
// database stack and its version, checks X against the Region's valid upgrade targets, and for
// a major version runs MajorUpgrade. A minor version is only planned: it goes through the stack
// (the caller sets database.engineVersion to X and runs Up), so that the stack stays the
// record of what runs.
func (d *Deployer) Upgrade(ctx context.Context, databaseStack, to string, o BlueGreenOptions) (*UpgradeResult, error) {
	cluster, err := d.clusterOfStack(ctx, databaseStack)
	if err != nil {
		return nil, err
	}
	out, err := d.RDS.DescribeDBClusters(ctx, &rds.DescribeDBClustersInput{DBClusterIdentifier: aws.String(cluster)})
	if err != nil || len(out.DBClusters) == 0 {
		return nil, fmt.Errorf("read cluster %s: %v", cluster, err)
	}
	from := aws.ToString(out.DBClusters[0].EngineVersion)
	offer, err := d.LiveVersions(ctx, "")
	if err != nil {
		return nil, err
	}
	plan, err := PlanUpgrade(offer, from, to)
	if err != nil {
		return nil, err
	}
	res := &UpgradeResult{Plan: plan}
	if !plan.Major {
		return res, nil
	}
	o.Cluster, o.To = cluster, to
	res.BlueGreen, err = d.MajorUpgrade(ctx, o)
	return res, err
}
