package deploy

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/apgstack/apgstack/internal/progress"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
)

// StackError is a stack operation that ended badly, with its root cause.
type StackError struct {
	Stack  string
	Status string
	Reason string // the stack's status reason
	// Cause is the first resource that failed (not one cancelled because of it).
	Cause *progress.Event
	// RolledBack is set when CloudFormation rolled the stack back (exit 5).
	RolledBack bool
	Hint       string
}

func (e *StackError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "stack %s ended in %s", e.Stack, e.Status)
	if e.Cause != nil {
		fmt.Fprintf(&b, ": %s (%s) %s: %s", e.Cause.LogicalID, e.Cause.Type, e.Cause.Status, e.Cause.Reason)
		if e.Cause.Stack != e.Stack {
			fmt.Fprintf(&b, " [in nested stack %s]", e.Cause.Stack)
		}
	} else if e.Reason != "" {
		fmt.Fprintf(&b, ": %s", e.Reason)
	}
	if e.Hint != "" {
		fmt.Fprintf(&b, "; %s", e.Hint)
	}
	return b.String()
}

// InterruptedError is a wait stopped by the user (Ctrl-C). CloudFormation carries on.
type InterruptedError struct {
	Stack  string
	Status string
	Resume string
	Err    error
}

func (e *InterruptedError) Error() string {
	return fmt.Sprintf("stopped waiting for stack %s (last seen %s); CloudFormation carries on with it — nothing was cancelled. Follow it with `apgstack status --target aws`, and %s", e.Stack, e.Status, e.Resume)
}
func (e *InterruptedError) Unwrap() error { return e.Err }

// RootCause is the earliest failed event that is not a cancellation caused by another failure.
func RootCause(events []progress.Event) *progress.Event {
	sorted := append([]progress.Event(nil), events...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Time.Before(sorted[j].Time) })
	var fallback *progress.Event
	for i := range sorted {
		e := &sorted[i]
		if !strings.HasSuffix(e.Status, "_FAILED") {
			continue
		}
		r := strings.ToLower(e.Reason)
		if strings.Contains(r, "resource creation cancelled") || strings.Contains(r, "resource update cancelled") {
			continue
		}
		if strings.HasPrefix(e.Reason, "Embedded stack") || strings.HasPrefix(e.Reason, "The following resource(s) failed") {
			if fallback == nil {
				fallback = e
			}
			continue
		}
		return e
	}
	return fallback
}

// watcher follows the events of one stack operation and of the nested stacks it touches.
type watcher struct {
	d      *Deployer
	view   *progress.View
	rootID string
	name   string
	seen   map[string]bool
	since  time.Time // first event of this operation; nested stacks' older events are ignored
	nested []string
	isNest map[string]bool
	events []progress.Event
}

// newWatcher marks the events already there as seen, so that only this operation's are shown.
func (d *Deployer) newWatcher(ctx context.Context, stackID, name string) (*watcher, error) {
	w := &watcher{d: d, view: d.View, rootID: stackID, name: name, seen: map[string]bool{}, isNest: map[string]bool{}}
	out, err := d.CFN.DescribeStackEvents(ctx, &cloudformation.DescribeStackEventsInput{StackName: aws.String(stackID)})
	if err != nil {
		if notExist(err) {
			return w, nil
		}
		return nil, fmt.Errorf("read events of %s: %w", name, err)
	}
	for _, e := range out.StackEvents {
		w.seen[aws.ToString(e.EventId)] = true
	}
	return w, nil
}

// poll reads the new events of one stack, newest first as CloudFormation lists them.
func (w *watcher) poll(ctx context.Context, stackID string, nested bool) ([]progress.Event, error) {
	var fresh []progress.Event
	var token *string
	for {
		out, err := w.d.CFN.DescribeStackEvents(ctx, &cloudformation.DescribeStackEventsInput{StackName: aws.String(stackID), NextToken: token})
		if err != nil {
			if notExist(err) {
				return fresh, nil
			}
			return fresh, fmt.Errorf("read events of %s: %w", stackID, err)
		}
		for _, e := range out.StackEvents {
			id := aws.ToString(e.EventId)
			at := aws.ToTime(e.Timestamp)
			if w.seen[id] || (nested && at.Before(w.since)) {
				return fresh, nil
			}
			w.seen[id] = true
			fresh = append(fresh, progress.Event{Stack: aws.ToString(e.StackName), LogicalID: aws.ToString(e.LogicalResourceId),
				Type: aws.ToString(e.ResourceType), Status: string(e.ResourceStatus), Reason: aws.ToString(e.ResourceStatusReason),
				PhysicalID: aws.ToString(e.PhysicalResourceId), Time: at})
		}
		if out.NextToken == nil {
			return fresh, nil
		}
		token = out.NextToken
	}
}

// pollAll reads the new events of the stack and of the nested stacks seen so far, and shows
// them oldest first.
func (w *watcher) pollAll(ctx context.Context) error {
	fresh, err := w.poll(ctx, w.rootID, false)
	if err != nil {
		return err
	}
	if w.since.IsZero() && len(fresh) > 0 {
		w.since = fresh[len(fresh)-1].Time
	}
	for _, id := range w.nested {
		more, err := w.poll(ctx, id, true)
		if err != nil {
			return err
		}
		fresh = append(fresh, more...)
	}
	sort.SliceStable(fresh, func(i, j int) bool { return fresh[i].Time.Before(fresh[j].Time) })
	for _, e := range fresh {
		w.events = append(w.events, e)
		w.view.Event(e)
		// The rotation transform's hosted function lives in a nested stack: follow it too.
		if e.Type == "AWS::CloudFormation::Stack" && e.LogicalID != e.Stack && strings.HasPrefix(e.PhysicalID, "arn:") &&
			e.PhysicalID != w.rootID && !w.isNest[e.PhysicalID] {
			w.isNest[e.PhysicalID] = true
			w.nested = append(w.nested, e.PhysicalID)
		}
	}
	return nil
}

func terminal(status string) bool {
	return status != "" && !strings.HasSuffix(status, "_IN_PROGRESS")
}

// wait follows a stack until its operation ends and returns the final status. resume says how
// to carry on after Ctrl-C.
func (w *watcher) wait(ctx context.Context, resume string) (string, error) {
	status := ""
	for {
		s, err := w.d.describe(ctx, w.rootID)
		if err != nil {
			if ctx.Err() != nil {
				return status, &InterruptedError{Stack: w.name, Status: status, Resume: resume, Err: ctx.Err()}
			}
			return status, err
		}
		if s == nil {
			status = "DELETE_COMPLETE"
		} else {
			status = string(s.StackStatus)
		}
		if err := w.pollAll(ctx); err != nil {
			if ctx.Err() != nil {
				return status, &InterruptedError{Stack: w.name, Status: status, Resume: resume, Err: ctx.Err()}
			}
			return status, err
		}
		if terminal(status) {
			return status, nil
		}
		w.view.Tick()
		if err := w.d.sleep(ctx, w.d.Poll); err != nil {
			return status, &InterruptedError{Stack: w.name, Status: status, Resume: resume, Err: err}
		}
	}
}

// failure builds the error for a stack that ended in a bad status.
func (w *watcher) failure(ctx context.Context, status string) error {
	reason := ""
	if s, err := w.d.describe(ctx, w.rootID); err == nil && s != nil {
		reason = aws.ToString(s.StackStatusReason)
	}
	// CloudFormation undid the operation (or tried to): ROLLBACK_COMPLETE, UPDATE_ROLLBACK_COMPLETE,
	// and their _FAILED forms.
	rolledBack := strings.Contains(status, "ROLLBACK")
	return &StackError{Stack: w.name, Status: status, Reason: reason, Cause: RootCause(w.events), RolledBack: rolledBack, Hint: stuckHint(w.name, status)}
}

// IsInterrupted reports whether err is a wait stopped by the user.
func IsInterrupted(err error) bool {
	var ie *InterruptedError
	return errors.As(err, &ie)
}
