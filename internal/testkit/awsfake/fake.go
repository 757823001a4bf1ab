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
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strings"
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
	clusters   map[string]*cluster
	snapshots  []*snapshot
	failures   map[string]string // stack/logicalID -> failure reason
	secrets    map[string]string // ARN -> SecretString
	rotations  []Rotation
	// Blue/Green deployments and parameter groups (rds_bluegreen.go).
	blueGreens  []*blueGreen
	paramGroups []ParameterGroup
}

// New starts a fake and stops it when the test ends.
func New(t testing.TB) *Fake {
	f := &Fake{
		Account:    "123456789012",
		Region:     "eu-west-1",
		clock:      time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		stacks:     map[string]*stack{},
		byName:     map[string]string{},
		changeSets: map[string]*changeSet{},
		buckets:    map[string]map[string][]byte{},
		clusters:   map[string]*cluster{},
		failures:   map[string]string{},
		secrets:    map[string]string{},
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

// ---- HTTP plumbing ----

var scopeRE = regexp.MustCompile(`Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request`)

func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	m := scopeRE.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		http.Error(w, "awsfake: unsigned request", http.StatusForbidden)
		return
	}
	service := m[1]
	if f.DenyAuth {
		if service == "s3" || service == "guardduty" || service == "cloudtrail" || service == "config" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		queryError(w, http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid.")
		return
	}
	if f.Deny[service] {
		f.record(Call{Service: service, Action: "denied"})
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-Errortype", "AccessDeniedException")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `{"__type":"AccessDeniedException","message":"User: arn:aws:iam::%s:user/fake is not authorized to perform this action"}`, f.Account)
		return
	}
	switch service {
	case "cloudformation", "sts", "rds":
		f.serveQuery(w, r, service)
	case "s3":
		f.serveS3(w, r)
	case "cloudtrail", "config", "secretsmanager":
		f.serveJSON(w, r, service)
	case "guardduty":
		f.serveGuardDuty(w, r)
	default:
		http.Error(w, "awsfake: service not faked: "+service, http.StatusNotImplemented)
	}
}

func (f *Fake) record(c Call) {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	hook := f.OnCall
	f.mu.Unlock()
	if hook != nil {
		hook(c)
	}
}

// apiError is an error answer of the fake.
type apiError struct {
	status        int
	code, message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func validation(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, "ValidationError", fmt.Sprintf(format, args...)}
}

func (f *Fake) serveQuery(w http.ResponseWriter, r *http.Request, service string) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	action := form.Get("Action")
	f.record(Call{Service: service, Action: action, Form: form})
	f.mu.Lock()
	var result []x
	var aerr *apiError
	switch service {
	case "cloudformation":
		result, aerr = f.cloudFormation(action, form)
	case "sts":
		result, aerr = f.sts(action)
	case "rds":
		result, aerr = f.rds(action, form)
	}
	f.mu.Unlock()
	if aerr != nil {
		queryError(w, aerr.status, aerr.code, aerr.message)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	doc := el(action+"Response", el(action+"Result", result...), el("ResponseMetadata", tx("RequestId", "fake-request")))
	fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?>`)
	doc.write(w)
}

func queryError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	el("ErrorResponse", el("Error", tx("Type", "Sender"), tx("Code", code), tx("Message", message)), tx("RequestId", "fake-request")).write(w)
}

// x is an XML element: text, or children.
type x struct {
	name string
	text string
	kids []x
}

func el(name string, kids ...x) x { return x{name: name, kids: kids} }
func tx(name, text string) x      { return x{name: name, text: text} }

// members is a list whose entries are named member (or another name, as RDS does).
func members(name, member string, items []x) x {
	out := x{name: name}
	for _, it := range items {
		it.name = member
		out.kids = append(out.kids, it)
	}
	return out
}

func (e x) write(w io.Writer) {
	fmt.Fprintf(w, "<%s>", e.name)
	if e.kids == nil {
		xmlEscape(w, e.text)
	}
	for _, k := range e.kids {
		k.write(w)
	}
	fmt.Fprintf(w, "</%s>", e.name)
}

func xmlEscape(w io.Writer, s string) {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;")
	io.WriteString(w, r.Replace(s))
}

func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// memberValues reads Name.member.N entries of a query form.
func memberValues(form url.Values, name string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := form[fmt.Sprintf("%s.member.%d", name, i)]
		if !ok {
			return out
		}
		out = append(out, v[0])
	}
}

// memberStructs reads Name.member.N.Field entries of a query form.
func memberStructs(form url.Values, name string) []map[string]string {
	var out []map[string]string
	for i := 1; ; i++ {
		prefix := fmt.Sprintf("%s.member.%d.", name, i)
		m := map[string]string{}
		for k, v := range form {
			if strings.HasPrefix(k, prefix) {
				m[strings.TrimPrefix(k, prefix)] = v[0]
			}
		}
		if len(m) == 0 {
			return out
		}
		out = append(out, m)
	}
}

func (f *Fake) sts(action string) ([]x, *apiError) {
	if action != "GetCallerIdentity" {
		return nil, &apiError{400, "InvalidAction", "not faked: " + action}
	}
	return []x{tx("Arn", "arn:aws:iam::"+f.Account+":user/fake"), tx("UserId", "AIDAFAKE"), tx("Account", f.Account)}, nil
}

// ---- S3 ----

func (f *Fake) serveS3(w http.ResponseWriter, r *http.Request) {
	// Path style: /bucket/key.
	p := strings.TrimPrefix(r.URL.Path, "/")
	bucket, key, _ := strings.Cut(p, "/")
	if key == "" {
		f.serveBucket(w, r, bucket)
		return
	}
	action := map[string]string{http.MethodPut: "PutObject", http.MethodHead: "HeadObject", http.MethodGet: "GetObject"}[r.Method]
	f.record(Call{Service: "s3", Action: action, Form: url.Values{"Bucket": {bucket}, "Key": {key}}})
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if strings.Contains(r.Header.Get("Content-Encoding"), "aws-chunked") {
		body = unchunk(body)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	objs, ok := f.buckets[bucket]
	if !ok {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusNotFound)
		if r.Method != http.MethodHead {
			el("Error", tx("Code", "NoSuchBucket"), tx("Message", "The specified bucket does not exist"), tx("BucketName", bucket)).write(w)
		}
		return
	}
	switch r.Method {
	case http.MethodPut:
		objs[key] = body
		w.Header().Set("ETag", fmt.Sprintf(`"%x"`, len(body)))
		w.WriteHeader(http.StatusOK)
	case http.MethodHead, http.MethodGet:
		b, ok := objs[key]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			if r.Method == http.MethodGet {
				el("Error", tx("Code", "NoSuchKey"), tx("Message", "The specified key does not exist.")).write(w)
			}
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		w.Header().Set("ETag", fmt.Sprintf(`"%x"`, len(b)))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			w.Write(b)
		}
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

// unchunk decodes an aws-chunked body (size;chunk-signature=...\r\n data \r\n ... 0\r\n trailers).
func unchunk(b []byte) []byte {
	var out []byte
	s := string(b)
	for {
		line, rest, ok := strings.Cut(s, "\r\n")
		if !ok {
			return out
		}
		sizeHex, _, _ := strings.Cut(line, ";")
		var n int
		fmt.Sscanf(sizeHex, "%x", &n)
		if n == 0 || len(rest) < n {
			return out
		}
		out = append(out, rest[:n]...)
		s = strings.TrimPrefix(rest[n:], "\r\n")
	}
}

// objectFromURL reads a TemplateURL of the fake's S3 (path style or virtual-hosted).
func (f *Fake) objectFromURL(raw string) ([]byte, bool) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, false
	}
	host := u.Hostname()
	p := strings.TrimPrefix(u.Path, "/")
	var bucket, key string
	if i := strings.Index(host, ".s3."); i > 0 {
		bucket, key = host[:i], p
	} else {
		bucket, key, _ = strings.Cut(p, "/")
	}
	b, ok := f.buckets[bucket][key]
	return b, ok
}

// ---- CloudTrail, Config (JSON 1.1) and GuardDuty (REST-JSON) ----

func (f *Fake) serveJSON(w http.ResponseWriter, r *http.Request, service string) {
	target := r.Header.Get("X-Amz-Target")
	action := target[strings.LastIndex(target, ".")+1:]
	var in map[string]any
	_ = json.NewDecoder(r.Body).Decode(&in)
	form := url.Values{}
	for k, v := range in {
		form.Set(k, fmt.Sprint(v))
	}
	f.record(Call{Service: service, Action: action, Form: form})
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	var out any
	switch action {
	case "DescribeTrails":
		trails := []any{}
		if f.CloudTrailLogging {
			trails = append(trails, map[string]any{"Name": "org-trail", "TrailARN": "arn:aws:cloudtrail:" + f.Region + ":" + f.Account + ":trail/org-trail", "IsMultiRegionTrail": true, "HomeRegion": f.Region})
		}
		out = map[string]any{"trailList": trails}
	case "GetTrailStatus":
		out = map[string]any{"IsLogging": f.CloudTrailLogging}
	case "DescribeConfigurationRecorderStatus":
		recs := []any{}
		if f.ConfigRecording {
			recs = append(recs, map[string]any{"name": "default", "recording": true, "lastStatus": "SUCCESS"})
		}
		out = map[string]any{"ConfigurationRecordersStatus": recs}
	case "GetSecretValue":
		id := form.Get("SecretId")
		v, ok := f.secrets[id]
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			out = map[string]any{"__type": "ResourceNotFoundException", "message": "Secrets Manager can't find the specified secret."}
			break
		}
		out = map[string]any{"ARN": id, "Name": id[strings.LastIndex(id, ":")+1:], "SecretString": v, "VersionId": "fake-version", "VersionStages": []string{"AWSCURRENT"}}
	case "RotateSecret":
		// Only secrets the stacks created, by ARN; an unknown id is refused as AWS does.
		id := form.Get("SecretId")
		if _, ok := f.secrets[id]; !ok {
			w.WriteHeader(http.StatusBadRequest)
			out = map[string]any{"__type": "ResourceNotFoundException", "message": "Secrets Manager can't find the specified secret."}
			break
		}
		rot := Rotation{SecretID: id, RotateImmediately: form.Get("RotateImmediately") != "false", VersionID: fmt.Sprintf("fake-rotation-%d", len(f.rotations)+1)}
		f.rotations = append(f.rotations, rot)
		out = map[string]any{"ARN": id, "Name": id[strings.LastIndex(id, ":")+1:], "VersionId": rot.VersionID}
	default:
		w.WriteHeader(http.StatusBadRequest)
		out = map[string]any{"__type": "UnknownOperationException", "message": "not faked: " + action}
	}
	json.NewEncoder(w).Encode(out)
}

func (f *Fake) serveGuardDuty(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/detector":
		f.record(Call{Service: "guardduty", Action: "ListDetectors"})
		ids := []string{}
		if f.GuardDutyEnabled {
			ids = append(ids, "fakedetector")
		}
		json.NewEncoder(w).Encode(map[string]any{"detectorIds": ids})
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/detector/"):
		f.record(Call{Service: "guardduty", Action: "GetDetector"})
		json.NewEncoder(w).Encode(map[string]any{"status": "ENABLED", "serviceRole": "arn:aws:iam::" + f.Account + ":role/aws-service-role/guardduty.amazonaws.com/AWSServiceRoleForAmazonGuardDuty", "createdAt": "2026-01-01T00:00:00.000Z"})
	default:
		f.record(Call{Service: "guardduty", Action: r.Method + " " + r.URL.Path})
		w.Header().Set("X-Amzn-Errortype", "BadRequestException")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]any{"message": "not faked"})
	}
}
