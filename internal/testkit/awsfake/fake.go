// Package awsfake is an in-process FAKE of the AWS APIs that apgstack calls — CloudFormation,
// S3, STS, RDS, and the read-only parts of CloudTrail, AWS Config and GuardDuty — served by an
// httptest server, for tests only. No AWS endpoint is reachable from where apgstack is built, so
// the deploy code is tested against this fake through the real aws-sdk-go-v2 clients (pointed at
// the fake with their BaseEndpoint option).
//
// The fake keeps stack state and moves stacks through CloudFormation's statuses, emitting stack
// events the way CloudFormation does. It advances by calls, not by time: every DescribeStacks of
// a stack with an operation under way moves that operation one step, and every DescribeChangeSet
// moves a change set one status. Tests therefore run as fast as the client polls and never
// depend on timing.
//
// Services are told apart by the SigV4 credential scope of each request
// (…/region/<service>/aws4_request). CloudFormation, STS and RDS speak the AWS query protocol
// (form-encoded POST, XML answers), CloudTrail, Config and Secrets Manager JSON 1.1, GuardDuty REST-JSON and S3
// REST-XML.
package awsfake

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"sync"
	"testing"
	"time"
)

// Call is one request the fake answered.
type Call struct {
	Service string     // cloudformation, s3, sts, rds, cloudtrail, config, guardduty
	Action  string     // e.g. CreateChangeSet, PutObject, ListDetectors
	Form    url.Values // query-protocol parameters; for S3 Bucket and Key; for JSON the top-level fields
}

// Fake is the fake AWS. Create it with New; point clients at URL.
type Fake struct {
	URL     string
	Account string
	Region  string

	// OnCall, when set, is called (without the fake's lock held) after each call is recorded and
	// before it is answered: tests use it to cancel a context at a chosen moment.
	OnCall func(Call)
	// EventPageSize is how many events DescribeStackEvents returns per page (default 100).
	EventPageSize int
	// DenyAuth makes every call fail as with invalid credentials.
	DenyAuth bool
	// Deny refuses every call to the named services (e.g. "guardduty") with AccessDenied, as
	// for a role without those permissions.
	Deny map[string]bool

	// Preflight state: what the account has switched on.
	CloudTrailLogging bool // one multi-Region trail, logging when true; no trail when false
	ConfigRecording   bool // one recorder, recording when true; no recorder when false
	GuardDutyEnabled  bool // one enabled detector when true; none when false

	// Catalog is the Region's aurora-postgresql offer (see rds_catalog.go); nil means
	// DefaultCatalog. Set it before the first RDS call.
	Catalog *RDSCatalog

	srv        *httptest.Server
	mu         sync.Mutex
	calls      []Call
	seq        int
	clock      time.Time
	stacks     map[string]*stack // by stack ID
	byName     map[string]string // live stack name -> ID
	changeSets map[string]*changeSet
	buckets    map[string]map[string][]byte
	// bucketConfig holds each bucket's subresources (encryption, versioning, policy, ...) as
	// the client sent them.
	bucketConfig map[string]map[string]string
	// deleteFailures counts the deletions of a resource (stack/logical) still to fail.
	deleteFailures map[string]int
	clusters       map[string]*cluster
	// logGroups are the CloudWatch Logs groups that exist, by name (the ones RDS makes for a
	// cluster's exported logs, and the stacks').
	logGroups map[string]bool
	snapshots []*snapshot
	failures  map[string]string // stack/logicalID -> failure reason
	secrets   map[string]string // ARN -> SecretString
	rotations []Rotation
	// Blue/Green deployments and parameter groups (rds_bluegreen.go).
	blueGreens  []*blueGreen
	paramGroups []ParameterGroup
}

// New starts a fake and stops it when the test ends.
func New(t testing.TB) *Fake {
	f := &Fake{
		Account:        "123456789012",
		Region:         "eu-west-1",
		clock:          time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		stacks:         map[string]*stack{},
		byName:         map[string]string{},
		changeSets:     map[string]*changeSet{},
		buckets:        map[string]map[string][]byte{},
		bucketConfig:   map[string]map[string]string{},
		deleteFailures: map[string]int{},
		clusters:       map[string]*cluster{},
		logGroups:      map[string]bool{},
		failures:       map[string]string{},
		secrets:        map[string]string{},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	f.URL = f.srv.URL
	t.Cleanup(f.srv.Close)
	return f
}

// Calls returns every call so far, in order.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}

// CallsOf returns the calls of one action, in order.
func (f *Fake) CallsOf(action string) []Call {
	var out []Call
	for _, c := range f.Calls() {
		if c.Action == action {
			out = append(out, c)
		}
	}
	return out
}

// Actions lists the actions called so far, in order, optionally only of the given service.
func (f *Fake) Actions(service string) []string {
	var out []string
	for _, c := range f.Calls() {
		if service == "" || c.Service == service {
			out = append(out, c.Action)
		}
	}
	return out
}

// AddBucket creates an S3 bucket.
func (f *Fake) AddBucket(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.buckets[name] == nil {
		f.buckets[name] = map[string][]byte{}
	}
}

// BucketConfig returns a bucket's subresource as the client sent it (the request body): one of
// publicAccessBlock, encryption, versioning, policy, lifecycle, ownershipControls.
func (f *Fake) BucketConfig(bucket, subresource string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.bucketConfig[bucket][subresource]
	return v, ok
}

// Object returns an object's bytes and whether it exists.
func (f *Fake) Object(bucket, key string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.buckets[bucket][key]
	return b, ok
}

// FailResource makes the next create or update of a resource fail with reason. For a resource
// inside a nested stack, name it "<NestedStackLogicalID>/<LogicalID>" (the nested stacks hold
// RotationLambdaRole and RotationLambda).
func (f *Fake) FailResource(stackName, logicalID, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures[stackName+"/"+logicalID] = reason
}

// FailDelete makes the deletion of a resource fail times times, as a security group or subnet
// still holding a Lambda's network interface fails (DependencyViolation).
func (f *Fake) FailDelete(stackName, logicalID string, times int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleteFailures[stackName+"/"+logicalID] = times
}

// StackState is what a test can read of a stack.
type StackState struct {
	ID         string
	Status     string
	Parameters map[string]string
	Template   string
	Outputs    map[string]string
	Resources  []string // logical IDs
}

// Stack returns a live stack's state by name.
func (f *Fake) Stack(name string) (StackState, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, ok := f.byName[name]
	if !ok {
		return StackState{}, false
	}
	s := f.stacks[id]
	st := StackState{ID: s.id, Status: s.status, Parameters: map[string]string{}, Template: s.body, Outputs: map[string]string{}}
	for k, v := range s.params {
		st.Parameters[k] = v
	}
	for _, o := range s.outputs {
		st.Outputs[o.key] = o.value
	}
	for _, r := range s.resources {
		st.Resources = append(st.Resources, r.logical)
	}
	return st, true
}

// PutStack creates a stack directly in the given status (e.g. ROLLBACK_COMPLETE,
// UPDATE_ROLLBACK_FAILED), with the template and parameters given, as if an earlier run left it.
// Resources are only recorded for statuses that keep them.
func (f *Fake) PutStack(name, status, templateBody string, params map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	tpl, err := parseTemplate(templateBody)
	if err != nil {
		return err
	}
	s := f.newStack(name, "")
	s.status = status
	s.body = templateBody
	s.params = withDefaults(tpl, params)
	s.tpl = tpl
	f.event(s, s.name, "AWS::CloudFormation::Stack", s.id, "CREATE_IN_PROGRESS", "User Initiated")
	switch status {
	case "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED":
		f.event(s, s.name, "AWS::CloudFormation::Stack", s.id, status, "put by test")
	default:
		for _, r := range expand(tpl, f.pseudo(s, s.params)) {
			f.createResource(s, r)
			f.event(s, r.logical, r.typ, s.physical(r), "CREATE_COMPLETE", "")
		}
		f.setOutputs(s)
		f.event(s, s.name, "AWS::CloudFormation::Stack", s.id, status, "")
	}
	return nil
}

// PutSecretValue sets a secret's value (a secret the stacks created, by ARN).
func (f *Fake) PutSecretValue(arn, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.secrets[arn] = value
}

// Rotation is one RotateSecret call the fake accepted.
type Rotation struct {
	SecretID          string
	RotateImmediately bool
	VersionID         string
}

// Rotations lists the rotations asked for, in order. The fake records them and changes no
// secret value (the rotation function is AWS's, not the caller's).
func (f *Fake) Rotations() []Rotation {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Rotation(nil), f.rotations...)
}

// ClusterState is what a test can read or set of a DB cluster.
type ClusterState struct {
	ID                 string
	DeletionProtection bool
}

// Clusters lists the DB clusters.
func (f *Fake) Clusters() []ClusterState {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ClusterState
	for _, c := range f.clusters {
		out = append(out, ClusterState{ID: c.id, DeletionProtection: c.protected})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// SetDeletionProtection turns a cluster's deletion protection on or off.
func (f *Fake) SetDeletionProtection(clusterID string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.clusters[clusterID]; c != nil {
		c.protected = on
	}
}

// Snapshots lists the manual cluster snapshot identifiers.
func (f *Fake) Snapshots() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, s := range f.snapshots {
		out = append(out, s.id)
	}
	return out
}
