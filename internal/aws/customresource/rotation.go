package customresource

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// The second custom resource the function serves: it answers once a secret's rotation has
// finished. A RotationSchedule is complete as soon as Secrets Manager accepted the rotation; the
// application secrets' multi-user rotation logs in with the master secret, whose single-user
// rotation changes the password before it publishes it, so their first rotation must wait for the
// master's to finish, not merely to start.

// Properties of the rotation wait.
const (
	// PropRotatedSecretArn names the secret whose rotation is waited for; its presence selects
	// the rotation wait instead of the bootstrap.
	PropRotatedSecretArn = "RotatedSecretArn"
)

// RotationState is what Secrets Manager says of a secret's rotation.
type RotationState struct {
	Enabled     bool
	LastRotated time.Time
	// Pending is true while a version is labelled AWSPENDING: a rotation is under way (or failed
	// and will be retried).
	Pending bool
}

// Finished reports whether a rotation has completed and none is under way.
func (s RotationState) Finished() bool { return !s.LastRotated.IsZero() && !s.Pending }

// RotationReader reads a secret's rotation state.
type RotationReader func(ctx context.Context, arn string) (RotationState, error)

// SecretsManagerRotation reads rotation states with the AWS SDK (secretsmanager:DescribeSecret).
func SecretsManagerRotation(client *secretsmanager.Client) RotationReader {
	return func(ctx context.Context, arn string) (RotationState, error) {
		out, err := client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
		if err != nil {
			return RotationState{}, fmt.Errorf("describe secret %s: %w", arn, err)
		}
		st := RotationState{Enabled: aws.ToBool(out.RotationEnabled), LastRotated: aws.ToTime(out.LastRotatedDate)}
		for _, stages := range out.VersionIdsToStages {
			if slices.Contains(stages, "AWSPENDING") {
				st.Pending = true
			}
		}
		return st, nil
	}
}

// maxRotationPoll caps the wait between two looks at the secret.
const maxRotationPoll = 20 * time.Second

func (h *Handler) handleRotationWait(ctx context.Context, ev cfn.Event) error {
	resp := cfn.NewResponse(&ev)
	resp.PhysicalResourceID = ev.PhysicalResourceID
	if resp.PhysicalResourceID == "" {
		resp.PhysicalResourceID = "apgstack-rotation-wait/" + ev.LogicalResourceID
	}
	log := h.Log.With("requestType", ev.RequestType, "logicalResourceId", ev.LogicalResourceID, "requestId", ev.RequestID)
	arn, _ := ev.ResourceProperties[PropRotatedSecretArn].(string)
	tolerate, _ := ev.ResourceProperties[PropTolerateFailure].(string)
	work, cancel := workContext(ctx)
	defer cancel()
	err := guard(func() error {
		switch {
		case ev.RequestType == cfn.RequestDelete:
			return nil
		case arn == "":
			return fmt.Errorf("property %s is missing: required (the ARN of the secret whose rotation is waited for)", PropRotatedSecretArn)
		case h.Rotation == nil:
			return fmt.Errorf("no rotation reader configured")
		}
		return h.waitRotation(work, log, arn)
	})
	switch {
	case err == nil:
		resp.Status = cfn.StatusSuccess
	case tolerate == "true":
		resp.Status, resp.Reason = cfn.StatusSuccess, truncate("rotation wait failed (tolerated, TolerateFailure=true): "+err.Error())
		log.Warn("rotation wait failed, tolerated", "err", err)
	default:
		resp.Status, resp.Reason = cfn.StatusFailed, truncate(err.Error())
		log.Error("rotation wait failed", "err", err)
	}
	return h.answer(ctx, ev, resp)
}

// waitRotation polls the secret until a rotation has finished and none is under way.
func (h *Handler) waitRotation(ctx context.Context, log *slog.Logger, arn string) error {
	wait := h.Backoff
	for {
		st, err := h.Rotation(ctx, arn)
		if err != nil {
			return err
		}
		if st.Finished() {
			log.Info("rotation finished", "secret", arn, "lastRotated", st.LastRotated)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the rotation of secret %s has not finished in the time the function has (rotation enabled %v, last rotated %v, a version pending %v): look at the rotation function's log group (/aws/lambda/<RotationLambdaName>), then update the stack again",
				arn, st.Enabled, lastRotated(st), st.Pending)
		case <-time.After(wait):
		}
		wait = min(wait*2, maxRotationPoll)
	}
}

func lastRotated(st RotationState) string {
	if st.LastRotated.IsZero() {
		return "never"
	}
	return st.LastRotated.UTC().Format(time.RFC3339)
}
