package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Network interfaces that outlive their Lambda. The in-VPC functions of the database stack (the
// bootstrap and the hosted rotation functions) leave their network interfaces behind when they
// are deleted; AWS releases them some minutes later (up to about 40). Until then the network
// stack's security groups and subnets cannot be deleted and end in DELETE_FAILED
// (DependencyViolation). down waits and deletes again, saying what it waits for.

// Defaults of the wait for released network interfaces: 8 tries 5 minutes apart cover AWS's
// release time.
const (
	defaultENIRetryWait = 5 * time.Minute
	defaultENIRetries   = 8
)

// eniBlocked are the resource types that fail to delete while a Lambda's network interface
// remains.
var eniBlocked = []string{"AWS::EC2::SecurityGroup", "AWS::EC2::Subnet", "AWS::EC2::VPC"}

// blockedByInterfaces reports whether a deletion failed on a resource that a remaining network
// interface holds.
func blockedByInterfaces(err error) bool {
	var se *StackError
	if !errors.As(err, &se) || se.Status != "DELETE_FAILED" || se.Cause == nil {
		return false
	}
	return slices.Contains(eniBlocked, se.Cause.Type) ||
		strings.Contains(se.Cause.Reason, "DependencyViolation") || strings.Contains(se.Cause.Reason, "dependent object")
}

// deleteNetwork deletes a stack whose security groups or subnets may still hold the network
// interfaces of deleted Lambdas, deleting again while they are released.
func (d *Deployer) deleteNetwork(ctx context.Context, name, id, resume string) error {
	wait, tries := d.ENIRetryWait, d.ENIRetries
	if wait <= 0 {
		wait = defaultENIRetryWait
	}
	if tries <= 0 {
		tries = defaultENIRetries
	}
	var err error
	for try := 1; ; try++ {
		if err = d.deleteAndWait(ctx, name, id, resume); err == nil || !blockedByInterfaces(err) {
			return err
		}
		var se *StackError
		errors.As(err, &se)
		if try >= tries {
			return fmt.Errorf("%w; after %d tries %s still holds network interfaces: find them with `aws ec2 describe-network-interfaces --filters Name=vpc-id,Values=<the VPC> --region %s` (Lambda's are released by AWS; delete any other yourself), then run `apgstack down --target aws` again",
				err, tries, se.Cause.LogicalID, d.Region)
		}
		d.msg("%s: %s cannot be deleted yet: network interfaces of the deleted Lambdas remain until AWS releases them (up to about 40 minutes); deleting again in %s (try %d of %d)",
			name, se.Cause.LogicalID, wait, try+1, tries)
		if err := d.sleep(ctx, wait); err != nil {
			return &InterruptedError{Stack: name, Status: "DELETE_FAILED", Resume: resume, Err: err}
		}
	}
}
