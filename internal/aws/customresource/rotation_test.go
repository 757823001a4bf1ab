package customresource_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apgstack/apgstack/internal/aws/customresource"
	"github.com/aws/aws-lambda-go/cfn"
)

func waitEvent(f *fakeCFN, kind cfn.RequestType, props map[string]any) cfn.Event {
	return cfn.Event{
		RequestType: kind, RequestID: "req-" + string(kind), ResponseURL: f.srv.URL + "/response?X-Amz-Signature=abc",
		ResourceType: "Custom::MasterSecretRotated", LogicalResourceID: "MasterSecretRotated",
		StackID: "arn:aws:cloudformation:eu-west-1:123456789012:stack/db/1", ResourceProperties: props,
	}
}

// TestRotationWait: the wait answers SUCCESS only once the secret's rotation has finished (a
// rotation date and no AWSPENDING version), FAILED when the time runs out, and always answers.
func TestRotationWait(t *testing.T) {
	rotated := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		kind     cfn.RequestType
		props    map[string]any
		states   []customresource.RotationState // one per look; the last repeats
		readErr  error
		deadline time.Duration
		status   cfn.StatusType
		reason   string
		looks    int
	}{
		{name: "finishes after two looks", kind: cfn.RequestCreate, props: map[string]any{"RotatedSecretArn": arnMaster},
			states: []customresource.RotationState{{Enabled: true, Pending: true}, {Enabled: true, Pending: true, LastRotated: rotated}, {Enabled: true, LastRotated: rotated}},
			status: cfn.StatusSuccess, looks: 3},
		{name: "never finishes", kind: cfn.RequestUpdate, props: map[string]any{"RotatedSecretArn": arnMaster},
			states: []customresource.RotationState{{Enabled: true, Pending: true}}, deadline: responseReserveForTest + 200*time.Millisecond,
			status: cfn.StatusFailed, reason: "has not finished"},
		{name: "never finishes, tolerated", kind: cfn.RequestCreate, props: map[string]any{"RotatedSecretArn": arnMaster, "TolerateFailure": "true"},
			states: []customresource.RotationState{{Enabled: true, Pending: true}}, deadline: responseReserveForTest + 200*time.Millisecond,
			status: cfn.StatusSuccess, reason: "tolerated"},
		{name: "describe fails", kind: cfn.RequestCreate, props: map[string]any{"RotatedSecretArn": arnMaster},
			readErr: errors.New("AccessDeniedException: not allowed"), status: cfn.StatusFailed, reason: "AccessDenied"},
		{name: "no arn", kind: cfn.RequestCreate, props: map[string]any{"RotatedSecretArn": ""},
			status: cfn.StatusFailed, reason: "RotatedSecretArn is missing"},
		{name: "delete does not wait", kind: cfn.RequestDelete, props: map[string]any{"RotatedSecretArn": arnMaster},
			states: []customresource.RotationState{{Pending: true}}, status: cfn.StatusSuccess},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeCFN(t)
			looks := 0
			h := &customresource.Handler{Backoff: time.Millisecond, Rotation: func(_ context.Context, arn string) (customresource.RotationState, error) {
				if arn != arnMaster {
					t.Errorf("looked at %s", arn)
				}
				if tc.readErr != nil {
					return customresource.RotationState{}, tc.readErr
				}
				looks++
				return tc.states[min(looks, len(tc.states))-1], nil
			}}
			ctx := context.Background()
			if tc.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.deadline)
				defer cancel()
			}
			if err := h.Handle(ctx, waitEvent(f, tc.kind, tc.props)); err != nil {
				t.Fatalf("Handle: %v", err)
			}
			resp, _ := f.last(t)
			if resp.Status != tc.status || !strings.Contains(resp.Reason, tc.reason) || resp.PhysicalResourceID != "apgstack-rotation-wait/MasterSecretRotated" {
				t.Errorf("response %+v, want %s with %q", resp, tc.status, tc.reason)
			}
			if tc.looks > 0 && looks != tc.looks {
				t.Errorf("looked %d times, want %d", looks, tc.looks)
			}
		})
	}
}

// responseReserveForTest mirrors the handler's reserve for the response (15 s): a deadline just
// beyond it leaves the wait a fraction of a second.
const responseReserveForTest = 15 * time.Second

// TestAnswersOnEveryPath: a panic in the work and a function that could not initialize still
// answer CloudFormation — FAILED for Create/Update, SUCCESS for Delete of an uninitialized
// function (nothing to undo) — and never with a password.
func TestAnswersOnEveryPath(t *testing.T) {
	t.Run("panic", func(t *testing.T) {
		f := newFakeCFN(t)
		h := &customresource.Handler{Secrets: func(context.Context, string) (string, error) { panic("boom") }}
		ev := cfn.Event{RequestType: cfn.RequestCreate, RequestID: "r1", ResponseURL: f.srv.URL + "/r", LogicalResourceID: "Bootstrap",
			StackID: "arn:aws:cloudformation:eu-west-1:123456789012:stack/db/1",
			ResourceProperties: map[string]any{"MasterSecretArn": arnMaster, "OwnerSecretArn": arnOwner, "ReadWriteSecretArn": arnRW,
				"ReadOnlySecretArn": arnRO, "Host": "db.example", "Port": "5432", "DBName": "app"}}
		if err := h.Handle(context.Background(), ev); err != nil {
			t.Fatalf("Handle: %v", err)
		}
		if resp, _ := f.last(t); resp.Status != cfn.StatusFailed || !strings.Contains(resp.Reason, "panic: boom") {
			t.Errorf("response %+v, want FAILED naming the panic", resp)
		}
	})
	for _, tc := range []struct {
		kind   cfn.RequestType
		status cfn.StatusType
	}{{cfn.RequestCreate, cfn.StatusFailed}, {cfn.RequestUpdate, cfn.StatusFailed}, {cfn.RequestDelete, cfn.StatusSuccess}} {
		t.Run("init failed "+string(tc.kind), func(t *testing.T) {
			f := newFakeCFN(t)
			handle := customresource.InitFailed(errors.New("no Region configured"), nil)
			ev := cfn.Event{RequestType: tc.kind, RequestID: "r2", ResponseURL: f.srv.URL + "/r", LogicalResourceID: "Bootstrap",
				StackID: "arn:aws:cloudformation:eu-west-1:123456789012:stack/db/1", PhysicalResourceID: "apgstack-bootstrap/app/app"}
			if err := handle(context.Background(), ev); err != nil {
				t.Fatalf("handle: %v", err)
			}
			resp, _ := f.last(t)
			if resp.Status != tc.status || resp.PhysicalResourceID != "apgstack-bootstrap/app/app" ||
				(tc.status == cfn.StatusFailed && !strings.Contains(resp.Reason, "no Region configured")) {
				t.Errorf("response %+v, want %s", resp, tc.status)
			}
		})
	}
}
