package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/apgstack/apgstack/internal/aws/stacks"
	"github.com/apgstack/apgstack/internal/progress"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/configservice"
	"github.com/aws/aws-sdk-go-v2/service/guardduty"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

// Deployer talks to one account and Region.
type Deployer struct {
	CFN        *cloudformation.Client
	S3         *s3.Client
	STS        *sts.Client
	RDS        *rds.Client
	CloudTrail *cloudtrail.Client
	Config     *configservice.Client
	GuardDuty  *guardduty.Client
	// SecretsManager reads the master secret for psql.
	SecretsManager *secretsmanager.Client
	Region         string

	// Poll is how often stack status and events are read (CloudFormation's own waiters use
	// 5 to 30 seconds); ChangeSetPoll the same for change sets.
	Poll          time.Duration
	ChangeSetPoll time.Duration
	// View shows events, messages and progress; Out receives change set listings.
	View *progress.View
	Out  io.Writer
	// Confirm asks before anything is changed; nil means yes.
	Confirm func(question string) error
	// Now names change sets; time.Now when nil.
	Now func() time.Time
	// ENIRetryWait and ENIRetries tune how down waits for the network interfaces of deleted
	// Lambdas before deleting the network stack again (teardown.go); zero takes the defaults.
	ENIRetryWait time.Duration
	ENIRetries   int
}

// New returns a Deployer for an AWS configuration from Load.
func New(cfg aws.Config) *Deployer {
	return &Deployer{
		CFN: cloudformation.NewFromConfig(cfg),
		S3: s3.NewFromConfig(cfg, func(o *s3.Options) {
			// A custom endpoint (a fake, LocalStack) has no per-bucket host names.
			if cfg.BaseEndpoint != nil {
				o.UsePathStyle = true
			}
		}),
		STS:            sts.NewFromConfig(cfg),
		RDS:            rds.NewFromConfig(cfg),
		CloudTrail:     cloudtrail.NewFromConfig(cfg),
		Config:         configservice.NewFromConfig(cfg),
		GuardDuty:      guardduty.NewFromConfig(cfg),
		SecretsManager: secretsmanager.NewFromConfig(cfg),
		Region:         cfg.Region,
		Poll:           5 * time.Second,
		ChangeSetPoll:  2 * time.Second,
		View:           progress.New(io.Discard, progress.Options{}),
		Out:            io.Discard,
	}
}

func (d *Deployer) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Deployer) confirm(q string) error {
	if d.Confirm == nil {
		return nil
	}
	return d.Confirm(q)
}

func (d *Deployer) msg(format string, args ...any) { d.View.Printf(format, args...) }

func (d *Deployer) sleep(ctx context.Context, p time.Duration) error {
	t := time.NewTimer(p)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// StackRef names one stack.
type StackRef struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// Output is one stack output.
type Output struct {
	Key         string `json:"key"`
	Value       string `json:"value"`
	Export      string `json:"export,omitempty"`
	Description string `json:"description,omitempty"`
}

// StackStatus is what status and outputs report of one stack.
type StackStatus struct {
	Kind    string    `json:"kind"`
	Name    string    `json:"name"`
	Exists  bool      `json:"exists"`
	ID      string    `json:"id,omitempty"`
	Status  string    `json:"status"`
	Reason  string    `json:"reason,omitempty"`
	Updated time.Time `json:"updated,omitzero"`
	Outputs []Output  `json:"outputs,omitempty"`
	// Hint says what to do when the status is stuck.
	Hint string `json:"hint,omitempty"`
}

// describe returns a stack, or nil when it does not exist.
func (d *Deployer) describe(ctx context.Context, nameOrID string) (*cfntypes.Stack, error) {
	out, err := d.CFN.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(nameOrID)})
	if err != nil {
		if notExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("describe stack %s: %w", nameOrID, err)
	}
	if len(out.Stacks) == 0 {
		return nil, nil
	}
	return &out.Stacks[0], nil
}

func notExist(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "ValidationError" && strings.Contains(ae.ErrorMessage(), "does not exist")
}

func outputsOf(s *cfntypes.Stack) []Output {
	var out []Output
	for _, o := range s.Outputs {
		out = append(out, Output{Key: aws.ToString(o.OutputKey), Value: aws.ToString(o.OutputValue), Export: aws.ToString(o.ExportName), Description: aws.ToString(o.Description)})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Status reads the stacks' status and outputs.
func (d *Deployer) Status(ctx context.Context, refs []StackRef) ([]StackStatus, error) {
	var out []StackStatus
	for _, r := range refs {
		s, err := d.describe(ctx, r.Name)
		if err != nil {
			return nil, err
		}
		st := StackStatus{Kind: r.Kind, Name: r.Name, Status: "NOT_FOUND"}
		if s != nil {
			st.Exists = true
			st.ID = aws.ToString(s.StackId)
			st.Status = string(s.StackStatus)
			st.Reason = aws.ToString(s.StackStatusReason)
			st.Updated = aws.ToTime(s.CreationTime)
			if s.LastUpdatedTime != nil {
				st.Updated = *s.LastUpdatedTime
			}
			st.Outputs = outputsOf(s)
			st.Hint = stuckHint(r.Name, st.Status)
		}
		out = append(out, st)
	}
	return out, nil
}

// stuckHint says how to get a stack out of a status in which it can be neither updated nor
// deployed over.
func stuckHint(name, status string) string {
	switch status {
	case "UPDATE_ROLLBACK_FAILED":
		return fmt.Sprintf("the rollback of the last update failed: fix what the events name, then `aws cloudformation continue-update-rollback --stack-name %s` (add --resources-to-skip for resources that cannot be rolled back), or use \"Continue update rollback\" in the CloudFormation console; then run `apgstack up --target aws` again", name)
	case "ROLLBACK_FAILED", "DELETE_FAILED", "CREATE_FAILED":
		return fmt.Sprintf("the stack cannot be updated in %s: delete it (`aws cloudformation delete-stack --stack-name %s`, with --retain-resources for what cannot be deleted, or in the console), then run `apgstack up --target aws` again", status, name)
	case "ROLLBACK_COMPLETE":
		return "the first create failed and the stack holds nothing: `apgstack up --target aws` deletes and recreates it after asking"
	case "REVIEW_IN_PROGRESS":
		return "a change set was created but never executed: `apgstack up --target aws` carries on from here"
	}
	if strings.HasSuffix(status, "_IN_PROGRESS") {
		return "CloudFormation is working on the stack: wait for it (`apgstack status --target aws`), then run the command again"
	}
	return ""
}

// Summary is what a person needs after up: how to reach the bastion and the database, and the
// secret that holds the password.
type Summary struct {
	SSHCommand      string `json:"SSHCommand,omitempty"`
	PSQLCommandLine string `json:"PSQLCommandLine,omitempty"`
	ClusterEndpoint string `json:"ClusterEndpoint,omitempty"`
	ReaderEndpoint  string `json:"ReaderEndpoint,omitempty"`
	SecretArn       string `json:"SecretArn,omitempty"`
	ReadSecret      string `json:"ReadSecretCommand,omitempty"`
}

// Summarize picks the summary from the stacks' outputs. The secret is the output whose name
// speaks of a secret's ARN (the master secret's, when there are several).
func Summarize(list []StackStatus, region string) Summary {
	var s Summary
	var secrets []Output
	for _, st := range list {
		for _, o := range st.Outputs {
			switch k := o.Key; {
			case k == stacks.OutputSSHCommand:
				s.SSHCommand = o.Value
			case k == stacks.OutputPSQLCommandLine:
				s.PSQLCommandLine = o.Value
			case k == stacks.OutputClusterEndpoint:
				s.ClusterEndpoint = o.Value
			case k == stacks.OutputReaderEndpoint:
				s.ReaderEndpoint = o.Value
			case strings.Contains(strings.ToLower(k), "secret") && strings.HasPrefix(o.Value, "arn:"):
				secrets = append(secrets, o)
			}
		}
	}
	// The master secret: SecretArn in our database stack; else one that says master; else the
	// first.
	rank := func(o Output) int {
		switch {
		case o.Key == stacks.OutputSecretArn:
			return 0
		case strings.Contains(strings.ToLower(o.Key), "master"):
			return 1
		}
		return 2
	}
	best := 3
	for _, o := range secrets {
		if r := rank(o); r < best {
			best, s.SecretArn = r, o.Value
		}
	}
	if s.SecretArn != "" {
		s.ReadSecret = fmt.Sprintf("aws secretsmanager get-secret-value --secret-id %s --query SecretString --output text", s.SecretArn)
		if region != "" {
			s.ReadSecret += " --region " + region
		}
	}
	return s
}

// Lines renders the summary as name/value pairs in a fixed order, skipping empty ones.
func (s Summary) Lines() [][2]string {
	var out [][2]string
	for _, kv := range [][2]string{{stacks.OutputSSHCommand, s.SSHCommand}, {stacks.OutputPSQLCommandLine, s.PSQLCommandLine},
		{stacks.OutputClusterEndpoint, s.ClusterEndpoint}, {stacks.OutputReaderEndpoint, s.ReaderEndpoint},
		{stacks.OutputSecretArn, s.SecretArn}, {"ReadSecretCommand", s.ReadSecret}} {
		if kv[1] != "" {
			out = append(out, kv)
		}
	}
	return out
}
