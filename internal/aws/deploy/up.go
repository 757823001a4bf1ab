package deploy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"

	"github.com/apgstack/apgstack/internal/aws/stacks"
	"github.com/apgstack/apgstack/internal/progress"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// MaxTemplateBody is CloudFormation's limit for a template passed inline; larger ones go
// through S3.
const MaxTemplateBody = 51200

// Capabilities every stack is deployed with: IAM roles (named ones too) and the auto-expanded
// Secrets Manager rotation transform.
var Capabilities = []cfntypes.Capability{cfntypes.CapabilityCapabilityIam, cfntypes.CapabilityCapabilityNamedIam, cfntypes.CapabilityCapabilityAutoExpand}

// Packager builds the bootstrap Lambda's zip and names the S3 key it belongs under (the
// lambdazip package, in the command line).
type Packager interface {
	Package(ctx context.Context) (zip []byte, key string, err error)
}

// PackagerFunc adapts a function to Packager.
type PackagerFunc func(ctx context.Context) ([]byte, string, error)

// Package implements Packager.
func (f PackagerFunc) Package(ctx context.Context) ([]byte, string, error) { return f(ctx) }

// UpOptions tune Up.
type UpOptions struct {
	// DryRun shows the change sets and removes them.
	DryRun bool
	// Bootstrap packages the bootstrap Lambda; nil means the zip is already where the database
	// stack's parameters say.
	Bootstrap Packager
	// AssetsBucket (EnsureAssetsBucket) takes templates over the inline limit, and the
	// bootstrap Lambda's zip when the configuration names no bucket of its own.
	AssetsBucket string
}

// StackResult is what Up did with one stack.
type StackResult struct {
	Kind    string           `json:"kind"`
	Name    string           `json:"name"`
	Action  string           `json:"action"` // created, updated, refreshed (routine changes only), unchanged, dry-run
	Status  string           `json:"status"`
	Changes []ResourceChange `json:"changes,omitempty"`
}

// ResourceChange is one line of a change set.
type ResourceChange struct {
	Action      string `json:"action"`
	LogicalID   string `json:"logicalResourceId"`
	Type        string `json:"resourceType"`
	Replacement string `json:"replacement,omitempty"`
	// Routine is a change no edit caused: CloudFormation's own update of a nested stack, or a
	// value that follows one (changes.go).
	Routine bool `json:"routine,omitempty"`
}

// UpResult is the outcome of Up.
type UpResult struct {
	Stacks  []StackResult `json:"stacks"`
	Status  []StackStatus `json:"status,omitempty"`
	Summary Summary       `json:"summary"`
}

// Up deploys the stacks in the order given (network, bastion, database), each through a change
// set, and returns the outputs.
func (d *Deployer) Up(ctx context.Context, list []*stacks.Stack, o UpOptions) (*UpResult, error) {
	res := &UpResult{}
	// Before any change set: a version or class the Region does not offer would fail the
	// cluster twenty minutes in.
	for _, st := range list {
		if st.Kind == stacks.Database {
			if err := d.CheckOffered(ctx, st); err != nil {
				return res, err
			}
		}
	}
	var refs []StackRef
	for _, st := range list {
		refs = append(refs, StackRef{Kind: st.Kind, Name: st.Name})
		if st.Kind == stacks.Database {
			var err error
			if param(st, stacks.ParamBootstrapBucket) == "" && o.AssetsBucket != "" && o.Bootstrap != nil {
				st = withParam(st, stacks.ParamBootstrapBucket, o.AssetsBucket)
			}
			if st, err = d.bootstrapZip(ctx, st, o); err != nil {
				return res, err
			}
		}
		r, err := d.upStack(ctx, st, o)
		if r != nil {
			res.Stacks = append(res.Stacks, *r)
		}
		if err != nil {
			return res, err
		}
	}
	if o.DryRun {
		return res, nil
	}
	status, err := d.Status(ctx, refs)
	if err != nil {
		return res, err
	}
	res.Status = status
	res.Summary = Summarize(status, d.Region)
	return res, nil
}

func param(st *stacks.Stack, key string) string {
	for _, p := range st.Parameters {
		if p.ParameterKey == key {
			return p.ParameterValue
		}
	}
	return ""
}

// withParam returns a copy of st with one parameter set.
func withParam(st *stacks.Stack, key, value string) *stacks.Stack {
	c := *st
	c.Parameters = nil
	found := false
	for _, p := range st.Parameters {
		if p.ParameterKey == key {
			p.ParameterValue, found = value, true
		}
		c.Parameters = append(c.Parameters, p)
	}
	if !found {
		c.Parameters = append(c.Parameters, stacks.Param{ParameterKey: key, ParameterValue: value})
	}
	return &c
}

// bootstrapZip makes sure the bootstrap Lambda's zip is where the database stack's parameters say,
// when the stack bootstraps (a bucket is set and no snapshot is restored). The zip is built and
// uploaded only when HeadObject does not find the key; a key of the package's own naming is
// filled in when the configuration leaves it empty.
func (d *Deployer) bootstrapZip(ctx context.Context, st *stacks.Stack, o UpOptions) (*stacks.Stack, error) {
	bucket := param(st, stacks.ParamBootstrapBucket)
	if bucket == "" || param(st, stacks.ParamSnapshot) != "" {
		return st, nil
	}
	key := param(st, stacks.ParamBootstrapKey)
	if key != "" {
		exists, err := d.objectExists(ctx, bucket, key)
		if err != nil {
			return st, err
		}
		if exists {
			d.msg("bootstrap Lambda: s3://%s/%s is already there", bucket, key)
			return st, nil
		}
	}
	if o.Bootstrap == nil {
		if key == "" {
			return st, fmt.Errorf("database stack: %s is %q but %s is empty: run `apgstack package` and set database.bootstrapS3Key to the key it prints", stacks.ParamBootstrapBucket, bucket, stacks.ParamBootstrapKey)
		}
		return st, fmt.Errorf("bootstrap Lambda zip s3://%s/%s does not exist: upload it, or run apgstack up from a checkout of apgstack so that it builds and uploads it", bucket, key)
	}
	zip, pkgKey, err := o.Bootstrap.Package(ctx)
	if err != nil {
		return st, fmt.Errorf("bootstrap Lambda zip s3://%s/%s is not there and could not be built: %w", bucket, key, err)
	}
	switch {
	case key == "":
		st = withParam(st, stacks.ParamBootstrapKey, pkgKey)
		exists, err := d.objectExists(ctx, bucket, pkgKey)
		if err != nil {
			return st, err
		}
		if exists {
			d.msg("bootstrap Lambda: s3://%s/%s is already there", bucket, pkgKey)
			return st, nil
		}
	case key != pkgKey:
		return st, fmt.Errorf("bootstrap Lambda zip s3://%s/%s does not exist, and this checkout builds %s: set database.bootstrapS3Key to %s (what `apgstack package` prints), or upload %s yourself", bucket, key, pkgKey, pkgKey, key)
	}
	if o.DryRun {
		d.msg("bootstrap Lambda: would upload s3://%s/%s (%d bytes)", bucket, pkgKey, len(zip))
		return st, nil
	}
	if err := d.put(ctx, bucket, pkgKey, "application/zip", zip); err != nil {
		return st, fmt.Errorf("bootstrap Lambda: %w", err)
	}
	d.msg("bootstrap Lambda: uploaded s3://%s/%s (%d bytes)", bucket, pkgKey, len(zip))
	return st, nil
}

func (d *Deployer) objectExists(ctx context.Context, bucket, key string) (bool, error) {
	_, err := d.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err == nil {
		return true, nil
	}
	var nf *s3types.NotFound
	var re *awshttp.ResponseError
	if errors.As(err, &nf) || (errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound) {
		if bucketMissing(err) {
			return false, d.noBucket(bucket)
		}
		return false, nil
	}
	return false, fmt.Errorf("look for s3://%s/%s: %w", bucket, key, err)
}

func bucketMissing(err error) bool { return strings.Contains(err.Error(), "NoSuchBucket") }

func (d *Deployer) noBucket(bucket string) error {
	return fmt.Errorf("S3 bucket %s does not exist (database.bootstrapS3Bucket): create it in %s first (`aws s3 mb s3://%s --region %s`)", bucket, d.Region, bucket, d.Region)
}

func (d *Deployer) put(ctx context.Context, bucket, key, contentType string, body []byte) error {
	_, err := d.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body), ContentType: aws.String(contentType)})
	if err != nil && bucketMissing(err) {
		return d.noBucket(bucket)
	}
	if err != nil {
		return fmt.Errorf("upload s3://%s/%s: %w", bucket, key, err)
	}
	return nil
}

// errNoPreview: a dry run cannot show the change set of a template that would go to an assets
// bucket not created yet.
var errNoPreview = errors.New("no preview")

// templateSource is the template inline, or uploaded to S3 when it is over the inline limit.
func (d *Deployer) templateSource(ctx context.Context, st *stacks.Stack, bucket string, dryRun bool) (body, url *string, err error) {
	b, err := st.Template.YAML()
	if err != nil {
		return nil, nil, fmt.Errorf("render the %s template: %w", st.Kind, err)
	}
	if len(b) <= MaxTemplateBody {
		return aws.String(string(b)), nil, nil
	}
	if bucket == "" {
		// No bucket to upload to: the same template as compact JSON is about a tenth smaller
		// than YAML, which may be enough.
		if j, err := st.Template.JSON(); err == nil {
			var c bytes.Buffer
			if json.Compact(&c, j) == nil && c.Len() <= MaxTemplateBody {
				d.msg("%s: template sent as compact JSON (%d bytes; the YAML is %d, over the %d-byte limit for inline templates)", st.Name, c.Len(), len(b), MaxTemplateBody)
				return aws.String(c.String()), nil, nil
			}
		}
		// The account's assets bucket takes it, created after confirmation when missing.
		ab, err := d.EnsureAssetsBucket(ctx, dryRun)
		if err != nil {
			return nil, nil, fmt.Errorf("the %s template is %d bytes, over CloudFormation's %d-byte limit for inline templates, and the assets bucket is not available (%w): set database.bootstrapS3Bucket to a bucket in %s so that apgstack can upload it", st.Kind, len(b), MaxTemplateBody, err, d.Region)
		}
		if ab.Missing {
			return nil, nil, errNoPreview
		}
		bucket = ab.Name
	}
	sum := sha256.Sum256(b)
	key := fmt.Sprintf("apgstack/templates/%s-%s.yaml", st.Name, hex.EncodeToString(sum[:8]))
	if ok, err := d.objectExists(ctx, bucket, key); err != nil {
		return nil, nil, err
	} else if !ok {
		if err := d.put(ctx, bucket, key, "application/x-yaml", b); err != nil {
			return nil, nil, fmt.Errorf("%s template: %w", st.Kind, err)
		}
	}
	return nil, aws.String(fmt.Sprintf("https://%s.s3.%s.amazonaws.com/%s", bucket, d.Region, key)), nil
}

// upStack deploys one stack.
func (d *Deployer) upStack(ctx context.Context, st *stacks.Stack, o UpOptions) (*StackResult, error) {
	res := &StackResult{Kind: st.Kind, Name: st.Name}
	existing, err := d.describe(ctx, st.Name)
	if err != nil {
		return nil, err
	}
	csType := cfntypes.ChangeSetTypeCreate
	// csStack is the stack the change set is made for: the stack itself, except for a dry run
	// on a stack in ROLLBACK_COMPLETE, which CloudFormation neither updates nor creates again;
	// its preview is a CREATE change set for a temporary stack, removed afterwards.
	csStack := st.Name
	if existing != nil {
		status := string(existing.StackStatus)
		switch {
		case status == "REVIEW_IN_PROGRESS":
			// A change set was created and never executed: create from here.
		case status == "ROLLBACK_COMPLETE":
			if o.DryRun {
				csStack = dryRunStackName(st.Name)
				d.msg("%s: in ROLLBACK_COMPLETE; up would delete it and create it again — previewed as stack %s", st.Name, csStack)
				break
			}
			if err := d.recreate(ctx, existing); err != nil {
				return nil, err
			}
		case strings.HasSuffix(status, "_IN_PROGRESS"), strings.HasSuffix(status, "_FAILED"):
			return nil, &StackError{Stack: st.Name, Status: status, Reason: aws.ToString(existing.StackStatusReason), Hint: stuckHint(st.Name, status)}
		default:
			csType = cfntypes.ChangeSetTypeUpdate
			if st, err = d.adaptToExisting(ctx, st, aws.ToString(existing.StackId)); err != nil {
				return nil, err
			}
		}
	}
	body, url, err := d.templateSource(ctx, st, d.templateBucket(st, o), o.DryRun)
	if errors.Is(err, errNoPreview) {
		d.msg("%s: the template goes to the assets bucket, which up would create first: no change set to preview", st.Name)
		res.Action = "dry-run"
		return res, nil
	}
	if err != nil {
		return nil, err
	}
	var params []cfntypes.Parameter
	for _, p := range st.Parameters {
		params = append(params, cfntypes.Parameter{ParameterKey: aws.String(p.ParameterKey), ParameterValue: aws.String(p.ParameterValue)})
	}
	csName := "apgstack-" + d.now().UTC().Format("20060102T150405Z")
	created, err := d.CFN.CreateChangeSet(ctx, &cloudformation.CreateChangeSetInput{
		StackName: aws.String(csStack), ChangeSetName: aws.String(csName), ChangeSetType: csType,
		TemplateBody: body, TemplateURL: url, Parameters: params, Capabilities: Capabilities,
		Tags: stackTags(st), Description: aws.String("apgstack up"),
	})
	if err != nil {
		return nil, fmt.Errorf("create change set for %s: %w", st.Name, err)
	}
	csID, stackID := aws.ToString(created.Id), aws.ToString(created.StackId)
	// A CREATE change set makes an empty stack in REVIEW_IN_PROGRESS; remove it when the change
	// set is not executed, so that nothing is left behind.
	discard := func() {
		_, _ = d.CFN.DeleteChangeSet(context.WithoutCancel(ctx), &cloudformation.DeleteChangeSetInput{ChangeSetName: aws.String(csID)})
		if csType == cfntypes.ChangeSetTypeCreate {
			d.deleteEmpty(context.WithoutCancel(ctx), stackID)
		}
	}
	cs, err := d.waitChangeSet(ctx, st.Name, csID)
	if err != nil {
		return nil, err
	}
	if cs.Status == cfntypes.ChangeSetStatusFailed {
		reason := aws.ToString(cs.StatusReason)
		discard()
		if strings.Contains(reason, "didn't contain changes") || strings.Contains(reason, "No updates are to be performed") {
			d.msg("%s: no changes", st.Name)
			res.Action = "unchanged"
			if existing != nil {
				res.Status = string(existing.StackStatus)
			}
			return res, nil
		}
		if o.DryRun {
			// A dry run on a new account cannot resolve the imports of stacks not deployed yet.
			d.msg("%s: change set failed: %s", st.Name, reason)
			res.Action = "failed"
			return res, nil
		}
		return nil, fmt.Errorf("change set for %s failed: %s", st.Name, reason)
	}
	res.Changes = changesOf(cs)
	routine := csType == cfntypes.ChangeSetTypeUpdate && Routine(res.Changes)
	d.printChanges(st, csType, res.Changes)
	if routine {
		fmt.Fprintln(d.Out, routineNote(len(res.Changes)))
		d.msg("%s: no changes from the configuration; the %d changes CloudFormation lists are the Secrets Manager transform's routine ones, applied without asking", st.Name, len(res.Changes))
	}
	if o.DryRun {
		discard()
		res.Action = "dry-run"
		return res, nil
	}
	verb := map[cfntypes.ChangeSetType]string{cfntypes.ChangeSetTypeCreate: "Create", cfntypes.ChangeSetTypeUpdate: "Update"}[csType]
	if !routine {
		if err := d.confirm(fmt.Sprintf("%s stack %s in %s with these %d changes?", verb, st.Name, d.Region, len(res.Changes))); err != nil {
			discard()
			return nil, err
		}
	}
	w, err := d.newWatcher(ctx, stackID, st.Name)
	if err != nil {
		return nil, err
	}
	if _, err := d.CFN.ExecuteChangeSet(ctx, &cloudformation.ExecuteChangeSetInput{ChangeSetName: aws.String(csID)}); err != nil {
		return nil, fmt.Errorf("execute change set for %s: %w", st.Name, err)
	}
	d.View.StackStart(st.Name, strings.ToLower(verb)+" ("+csName+")")
	status, err := w.wait(ctx, "run `apgstack up --target aws` again once it has finished")
	if err != nil {
		d.View.Close()
		return nil, err
	}
	d.View.StackDone(st.Name, status)
	res.Status = status
	if status != "CREATE_COMPLETE" && status != "UPDATE_COMPLETE" {
		return res, w.failure(ctx, status)
	}
	res.Action = map[cfntypes.ChangeSetType]string{cfntypes.ChangeSetTypeCreate: "created", cfntypes.ChangeSetTypeUpdate: "updated"}[csType]
	if routine {
		res.Action = "refreshed"
	}
	return res, nil
}

// dryRunStackName is the temporary stack a dry run previews a re-creation with: the name with a
// suffix, within CloudFormation's 128 characters.
func dryRunStackName(name string) string {
	const suffix = "-apgstack-dry-run"
	return name[:min(len(name), 128-len(suffix))] + suffix
}

// templateBucket is where a template too large to pass inline goes: the bootstrap bucket, else
// the assets bucket.
func (d *Deployer) templateBucket(st *stacks.Stack, o UpOptions) string {
	if b := param(st, stacks.ParamBootstrapBucket); b != "" {
		return b
	}
	return o.AssetsBucket
}

// recreate deletes a stack left in ROLLBACK_COMPLETE (a failed first create, holding nothing)
// after confirmation, so that it can be created again.
func (d *Deployer) recreate(ctx context.Context, s *cfntypes.Stack) error {
	name, id := aws.ToString(s.StackName), aws.ToString(s.StackId)
	cause := ""
	if w, err := d.allEvents(ctx, id); err == nil {
		if c := RootCause(w); c != nil {
			cause = fmt.Sprintf(" (it failed at %s: %s)", c.LogicalID, c.Reason)
		}
	}
	d.msg("%s: in ROLLBACK_COMPLETE — its first create failed%s and it holds no resources", name, cause)
	if err := d.confirm(fmt.Sprintf("Delete stack %s and create it again?", name)); err != nil {
		return err
	}
	return d.deleteAndWait(ctx, name, id, "run `apgstack up --target aws` again")
}

func (d *Deployer) deleteAndWait(ctx context.Context, name, id, resume string) error {
	w, err := d.newWatcher(ctx, id, name)
	if err != nil {
		return err
	}
	if _, err := d.CFN.DeleteStack(ctx, &cloudformation.DeleteStackInput{StackName: aws.String(id)}); err != nil {
		return fmt.Errorf("delete stack %s: %w", name, err)
	}
	d.View.StackStart(name, "delete")
	status, err := w.wait(ctx, resume)
	if err != nil {
		d.View.Close()
		return err
	}
	d.View.StackDone(name, status)
	if status != "DELETE_COMPLETE" {
		return w.failure(ctx, status)
	}
	return nil
}

// allEvents reads a stack's events, oldest first (for the cause of an earlier failure).
func (d *Deployer) allEvents(ctx context.Context, id string) ([]progress.Event, error) {
	w := &watcher{d: d, view: progress.New(io.Discard, progress.Options{}), rootID: id, seen: map[string]bool{}, isNest: map[string]bool{}}
	if err := w.pollAll(ctx); err != nil {
		return nil, err
	}
	return w.events, nil
}

func (d *Deployer) waitChangeSet(ctx context.Context, stack, id string) (*cloudformation.DescribeChangeSetOutput, error) {
	for {
		var all *cloudformation.DescribeChangeSetOutput
		var token *string
		for {
			out, err := d.CFN.DescribeChangeSet(ctx, &cloudformation.DescribeChangeSetInput{ChangeSetName: aws.String(id), NextToken: token})
			if err != nil {
				if ctx.Err() != nil {
					return nil, &InterruptedError{Stack: stack, Status: "change set pending", Resume: "run `apgstack up --target aws` again", Err: ctx.Err()}
				}
				return nil, fmt.Errorf("describe change set for %s: %w", stack, err)
			}
			if all == nil {
				all = out
			} else {
				all.Changes = append(all.Changes, out.Changes...)
			}
			if out.NextToken == nil {
				break
			}
			token = out.NextToken
		}
		switch all.Status {
		case cfntypes.ChangeSetStatusCreateComplete, cfntypes.ChangeSetStatusFailed:
			return all, nil
		}
		if err := d.sleep(ctx, d.ChangeSetPoll); err != nil {
			return nil, &InterruptedError{Stack: stack, Status: "change set " + string(all.Status), Resume: "run `apgstack up --target aws` again", Err: err}
		}
	}
}

func (d *Deployer) printChanges(st *stacks.Stack, typ cfntypes.ChangeSetType, changes []ResourceChange) {
	fmt.Fprintf(d.Out, "%s (%s): %d changes\n", st.Name, strings.ToLower(string(typ)), len(changes))
	tw := tabwriter.NewWriter(d.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ACTION\tLOGICAL ID\tTYPE\tREPLACEMENT")
	for _, c := range changes {
		repl := c.Replacement
		if repl == "" {
			repl = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.Action, c.LogicalID, c.Type, repl)
	}
	tw.Flush()
}

// deleteEmpty removes a stack that holds nothing (REVIEW_IN_PROGRESS) and waits until it is gone,
// so that the next run does not find it still being deleted.
func (d *Deployer) deleteEmpty(ctx context.Context, id string) {
	if _, err := d.CFN.DeleteStack(ctx, &cloudformation.DeleteStackInput{StackName: aws.String(id)}); err != nil {
		return
	}
	for i := 0; i < 60; i++ {
		s, err := d.describe(ctx, id)
		if err != nil || s == nil || terminal(string(s.StackStatus)) && s.StackStatus != cfntypes.StackStatusReviewInProgress {
			return
		}
		if d.sleep(ctx, d.ChangeSetPoll) != nil {
			return
		}
	}
}

// stackTags are the stack-level tags CloudFormation propagates to every taggable resource.
func stackTags(st *stacks.Stack) []cfntypes.Tag {
	out := make([]cfntypes.Tag, 0, len(st.Tags))
	for _, t := range st.Tags {
		out = append(out, cfntypes.Tag{Key: aws.String(t.Key), Value: aws.String(t.Value)})
	}
	return out
}
