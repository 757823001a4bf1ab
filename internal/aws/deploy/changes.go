package deploy

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
)

// Routine changes. A stack with the Secrets Manager transform never updates "without changes":
// the transform's hosted rotations are nested stacks, which CloudFormation updates on every
// update of the parent (change source Automatic), and their schedules follow the nested stacks'
// outputs (change source ResourceAttribute, evaluated when applied). Such a change set holds
// nothing the configuration changed; up shows it for what it is and applies it without asking.

// routineSources are the change sources that no edit of the template or the parameters causes.
var routineSources = map[cfntypes.ChangeSource]bool{
	cfntypes.ChangeSourceAutomatic:         true,
	cfntypes.ChangeSourceResourceAttribute: true,
}

// routineChange reports whether a resource change comes only from CloudFormation's own
// re-evaluation.
func routineChange(rc *cfntypes.ResourceChange) bool {
	if rc.Action != cfntypes.ChangeActionModify || len(rc.Details) == 0 {
		return false
	}
	for _, d := range rc.Details {
		if !routineSources[d.ChangeSource] {
			return false
		}
	}
	return true
}

// Routine reports whether every change of a change set is routine (and there is one at least).
func Routine(changes []ResourceChange) bool {
	for _, c := range changes {
		if !c.Routine {
			return false
		}
	}
	return len(changes) > 0
}

func changesOf(cs *cloudformation.DescribeChangeSetOutput) []ResourceChange {
	var out []ResourceChange
	for _, c := range cs.Changes {
		rc := c.ResourceChange
		if rc == nil {
			continue
		}
		out = append(out, ResourceChange{Action: string(rc.Action), LogicalID: aws.ToString(rc.LogicalResourceId),
			Type: aws.ToString(rc.ResourceType), Replacement: string(rc.Replacement), Routine: routineChange(rc)})
	}
	return out
}

// routineNote explains a routine change set.
func routineNote(n int) string {
	return fmt.Sprintf("  these %d changes are the Secrets Manager transform's rotation stacks, which CloudFormation updates on every update, and the schedules that follow them: nothing in the configuration changed", n)
}
