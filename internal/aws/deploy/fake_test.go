package deploy

// These tests run the deploy code through the real aws-sdk-go-v2 clients against awsfake, an
// in-process FAKE of CloudFormation, S3, STS, RDS, CloudTrail, Config and GuardDuty (no AWS
// endpoint is reachable where apgstack is built). The fake moves by calls, not time, so the
// tests poll every millisecond and never wait on a clock.

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apgstack/apgstack/cft"
	"github.com/apgstack/apgstack/internal/aws/stacks"
	"github.com/apgstack/apgstack/internal/progress"
	"github.com/apgstack/apgstack/internal/testkit/awsfake"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

const (
	netName  = "apg-net"
	bastName = "apg-bastion"
	dbName   = "apg-db"
	bucket   = "apg-artifacts"
	zipKey   = "bootstrap/0123abcd.zip"
)

var zipBytes = []byte("PK\x03\x04 fake zip of the bootstrap lambda")

type harness struct {
	f         *awsfake.Fake
	d         *Deployer
	log       *bytes.Buffer
	questions []string
	answer    error // what Confirm answers
}

func newFakeHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{f: awsfake.New(t), log: &bytes.Buffer{}}
	off := false
	cfg, err := Load(context.Background(), Options{Region: h.f.Region, Endpoint: h.f.URL, IMDS: &off,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDFAKE", "fake-secret-key", "")})
	if err != nil {
		t.Fatal(err)
	}
	h.d = New(cfg)
	h.d.Poll, h.d.ChangeSetPoll = time.Millisecond, time.Millisecond
	h.d.View = progress.New(h.log, progress.Options{})
	h.d.Out = h.log
	h.d.Confirm = func(q string) error {
		h.questions = append(h.questions, q)
		return h.answer
	}
	h.d.Now = func() time.Time { return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) }
	h.f.AddBucket(bucket)
	return h
}

func netTemplate(extra bool) *cft.Template {
	t := cft.New("network (test)")
	t.AddParameter(&cft.Parameter{Name: "ClassB", Type: "Number", Default: 0})
	t.AddResource("VPC", "AWS::EC2::VPC", map[string]any{"CidrBlock": cft.Sub("10.${ClassB}.0.0/16")})
	t.AddResource("SubnetAPrivate", "AWS::EC2::Subnet", map[string]any{"VpcId": cft.Ref("VPC")})
	if extra {
		t.AddResource("SubnetBPrivate", "AWS::EC2::Subnet", map[string]any{"VpcId": cft.Ref("VPC")})
	}
	t.AddOutput(&cft.Output{Name: "VPC", Value: cft.Ref("VPC"), Export: map[string]any{"Name": cft.Sub("${AWS::StackName}-VPC")}})
	return t
}

func bastionTemplate() *cft.Template {
	t := cft.New("bastion (test)")
	t.AddParameter(&cft.Parameter{Name: "ParentVPCStack", Type: "String"})
	t.AddResource("SecurityGroup", "AWS::EC2::SecurityGroup", map[string]any{"VpcId": cft.ImportSub("${ParentVPCStack}-VPC")})
	t.AddResource("Role", "AWS::IAM::Role", map[string]any{"Path": "/"})
	t.AddOutput(&cft.Output{Name: "BastionSecurityGroupID", Value: cft.Ref("SecurityGroup"), Export: map[string]any{"Name": cft.Sub("${AWS::StackName}-BastionSecurityGroupID")}})
	t.AddOutput(&cft.Output{Name: "SSHCommand", Value: cft.Sub("ssh -A ec2-user@${SecurityGroup}")})
	return t
}

func dbTemplate() *cft.Template {
	t := cft.New("database (test)")
	t.Transform = []string{"AWS::SecretsManager-2024-09-16"}
	t.AddParameter(&cft.Parameter{Name: "ParentVPCStack", Type: "String"})
	t.AddParameter(&cft.Parameter{Name: "ParentSSHBastionStack", Type: "String"})
	t.AddParameter(&cft.Parameter{Name: "LambdaBootStrapS3Bucket", Type: "String", Default: ""})
	t.AddParameter(&cft.Parameter{Name: "LambdaBootStrapS3Key", Type: "String", Default: ""})
	t.AddParameter(&cft.Parameter{Name: "DBSnapshotName", Type: "String", Default: ""})
	t.AddParameter(&cft.Parameter{Name: "DeletionProtection", Type: "String", Default: "false"})
	t.AddResource("Secret", "AWS::SecretsManager::Secret", map[string]any{"Description": "master"})
	t.AddResource("SecretRotationSchedule", "AWS::SecretsManager::RotationSchedule", map[string]any{"SecretId": cft.Ref("Secret"),
		"HostedRotationLambda": map[string]any{"RotationType": "PostgreSQLSingleUser"}})
	t.AddResource("SecurityGroup", "AWS::EC2::SecurityGroup", map[string]any{"VpcId": cft.ImportSub("${ParentVPCStack}-VPC"),
		"SourceSecurityGroupId": cft.ImportSub("${ParentSSHBastionStack}-BastionSecurityGroupID")})
	c := t.AddResource("AuroraDBCluster", "AWS::RDS::DBCluster", map[string]any{"Engine": "aurora-postgresql", "DeletionProtection": cft.Ref("DeletionProtection")})
	c.DeletionPolicy = "Snapshot"
	t.AddResource("BootstrapFunction", "AWS::Lambda::Function", map[string]any{"Code": map[string]any{"S3Bucket": cft.Ref("LambdaBootStrapS3Bucket"), "S3Key": cft.Ref("LambdaBootStrapS3Key")}})
	t.AddResource("BootstrapRole", "AWS::IAM::Role", map[string]any{"Path": "/"})
	t.AddOutput(&cft.Output{Name: "ClusterEndpoint", Value: cft.GetAtt("AuroraDBCluster", "Endpoint.Address")})
	t.AddOutput(&cft.Output{Name: "ReaderEndpoint", Value: cft.GetAtt("AuroraDBCluster", "ReadEndpoint.Address")})
	t.AddOutput(&cft.Output{Name: "PSQLCommandLine", Value: cft.Sub("psql --host=${AuroraDBCluster.Endpoint.Address} --port=5432 --username=pgadmin --dbname=app")})
	t.AddOutput(&cft.Output{Name: "SecretArn", Value: cft.Ref("Secret")})
	return t
}

func testStacks(netExtra bool) []*stacks.Stack {
	return []*stacks.Stack{
		{Kind: stacks.Network, Name: netName, Template: netTemplate(netExtra), Parameters: []stacks.Param{{ParameterKey: "ClassB", ParameterValue: "42"}},
			Tags: []stacks.Tag{{Key: "EnvironmentStage", Value: "dev"}, {Key: "Application", Value: "Aurora Demo"}}},
		{Kind: stacks.Bastion, Name: bastName, Template: bastionTemplate(), Parameters: []stacks.Param{{ParameterKey: "ParentVPCStack", ParameterValue: netName}}},
		{Kind: stacks.Database, Name: dbName, Template: dbTemplate(), Parameters: []stacks.Param{
			{ParameterKey: "ParentVPCStack", ParameterValue: netName}, {ParameterKey: "ParentSSHBastionStack", ParameterValue: bastName},
			{ParameterKey: "LambdaBootStrapS3Bucket", ParameterValue: bucket}, {ParameterKey: "LambdaBootStrapS3Key", ParameterValue: ""}}},
	}
}

var packager = PackagerFunc(func(context.Context) ([]byte, string, error) { return zipBytes, zipKey, nil })

func (h *harness) up(t *testing.T, list []*stacks.Stack, o UpOptions) (*UpResult, error) {
	t.Helper()
	if o.Bootstrap == nil {
		o.Bootstrap = packager
	}
	return h.d.Up(context.Background(), list, o)
}

func (h *harness) mustUp(t *testing.T, list []*stacks.Stack) *UpResult {
	t.Helper()
	res, err := h.up(t, list, UpOptions{})
	if err != nil {
		t.Fatalf("up: %v\n%s", err, h.log)
	}
	return res
}

func actionsOf(res *UpResult) []string {
	var out []string
	for _, s := range res.Stacks {
		out = append(out, s.Name+":"+s.Action)
	}
	return out
}

func equal(a, b []string) bool { return strings.Join(a, "|") == strings.Join(b, "|") }

func TestFakeFirstDeploy(t *testing.T) {
	h := newFakeHarness(t)
	res := h.mustUp(t, testStacks(false))

	if got, want := actionsOf(res), []string{"apg-net:created", "apg-bastion:created", "apg-db:created"}; !equal(got, want) {
		t.Fatalf("actions = %v, want %v", got, want)
	}
	// Each stack through a change set of type CREATE with the three capabilities, in order.
	ccs := h.f.CallsOf("CreateChangeSet")
	if len(ccs) != 3 {
		t.Fatalf("CreateChangeSet calls = %d, want 3", len(ccs))
	}
	for i, name := range []string{netName, bastName, dbName} {
		c := ccs[i].Form
		if c.Get("StackName") != name || c.Get("ChangeSetType") != "CREATE" {
			t.Errorf("change set %d: stack %q type %q", i, c.Get("StackName"), c.Get("ChangeSetType"))
		}
		caps := []string{c.Get("Capabilities.member.1"), c.Get("Capabilities.member.2"), c.Get("Capabilities.member.3")}
		if !equal(caps, []string{"CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"}) {
			t.Errorf("change set %d capabilities = %v", i, caps)
		}
		if c.Get("TemplateBody") == "" {
			t.Errorf("change set %d has no inline template", i)
		}
		if i == 0 && (c.Get("Tags.member.1.Key") != "EnvironmentStage" || c.Get("Tags.member.2.Value") != "Aurora Demo") {
			t.Errorf("the network change set does not carry the stack-level tags: %v", c)
		}
	}
	// The parameters that wire the stacks and locate the bootstrap zip.
	for stack, want := range map[string]map[string]string{
		bastName: {"ParentVPCStack": netName},
		dbName:   {"ParentVPCStack": netName, "ParentSSHBastionStack": bastName, "LambdaBootStrapS3Bucket": bucket, "LambdaBootStrapS3Key": zipKey},
	} {
		st, ok := h.f.Stack(stack)
		if !ok {
			t.Fatalf("stack %s missing", stack)
		}
		for k, v := range want {
			if st.Parameters[k] != v {
				t.Errorf("%s parameter %s = %q, want %q", stack, k, st.Parameters[k], v)
			}
		}
		if st.Status != "CREATE_COMPLETE" {
			t.Errorf("%s status %s", stack, st.Status)
		}
	}
	// The zip was looked for, then uploaded once, to the bucket and key of the parameters.
	puts := h.f.CallsOf("PutObject")
	if len(puts) != 1 || puts[0].Form.Get("Bucket") != bucket || puts[0].Form.Get("Key") != zipKey {
		t.Fatalf("PutObject calls = %+v", puts)
	}
	if b, _ := h.f.Object(bucket, zipKey); !bytes.Equal(b, zipBytes) {
		t.Errorf("uploaded zip = %q", b)
	}
	if heads := h.f.CallsOf("HeadObject"); len(heads) != 1 {
		t.Errorf("HeadObject calls = %d, want 1", len(heads))
	}
	// Asked before each execution; the change listing names the resources.
	if len(h.questions) != 3 || !strings.Contains(h.questions[0], "Create stack apg-net") {
		t.Errorf("questions = %q", h.questions)
	}
	out := h.log.String()
	for _, want := range []string{"ACTION", "Add", "AuroraDBCluster", "AWS::RDS::DBCluster", "CREATE_COMPLETE", "RotationLambda"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The rotation transform's nested stack was followed: its events were read by its ARN.
	nestedPolled := false
	for _, c := range h.f.CallsOf("DescribeStackEvents") {
		if strings.Contains(c.Form.Get("StackName"), "SecretRotationScheduleRotationApplication") {
			nestedPolled = true
		}
	}
	if !nestedPolled {
		t.Error("the nested stack's events were not read")
	}
	// The summary a person needs.
	s := res.Summary
	if !strings.HasPrefix(s.SSHCommand, "ssh -A ec2-user@") || !strings.Contains(s.ClusterEndpoint, ".cluster-fake.") ||
		!strings.Contains(s.ReaderEndpoint, ".cluster-ro-fake.") || !strings.HasPrefix(s.PSQLCommandLine, "psql --host=") ||
		!strings.HasPrefix(s.SecretArn, "arn:aws:secretsmanager:") {
		t.Errorf("summary = %+v", s)
	}
	if want := "aws secretsmanager get-secret-value --secret-id " + s.SecretArn + " --query SecretString --output text --region eu-west-1"; s.ReadSecret != want {
		t.Errorf("ReadSecret = %q, want %q", s.ReadSecret, want)
	}
}

func TestFakeNoChangeRerun(t *testing.T) {
	h := newFakeHarness(t)
	h.mustUp(t, testStacks(false))
	executed := len(h.f.CallsOf("ExecuteChangeSet"))
	h.questions = nil
	h.log.Reset()

	// The database stack carries the Secrets Manager transform: as on CloudFormation, its change
	// set is never empty (the rotation stacks and their schedules); up shows what it holds and
	// applies it without asking.
	res := h.mustUp(t, testStacks(false))
	if got, want := actionsOf(res), []string{"apg-net:unchanged", "apg-bastion:unchanged", "apg-db:refreshed"}; !equal(got, want) {
		t.Fatalf("actions = %v, want %v", got, want)
	}
	if n := len(h.f.CallsOf("ExecuteChangeSet")); n != executed+1 {
		t.Errorf("ExecuteChangeSet calls %d -> %d, want the database's routine change set executed", executed, n)
	}
	db := res.Stacks[2].Changes
	if len(db) != 2 || !Routine(db) || db[0].Type != "AWS::CloudFormation::Stack" || db[1].LogicalID != "SecretRotationSchedule" {
		t.Errorf("database changes = %+v, want the rotation stack and its schedule, routine", db)
	}
	if !strings.Contains(h.log.String(), "nothing in the configuration changed") {
		t.Errorf("log does not explain the routine changes:\n%s", h.log)
	}
	for _, c := range h.f.CallsOf("CreateChangeSet")[3:] {
		if c.Form.Get("ChangeSetType") != "UPDATE" {
			t.Errorf("re-run change set type %q", c.Form.Get("ChangeSetType"))
		}
	}
	if n := len(h.f.CallsOf("DeleteChangeSet")); n != 2 {
		t.Errorf("DeleteChangeSet calls = %d, want 2 (the empty change sets)", n)
	}
	if n := len(h.f.CallsOf("PutObject")); n != 1 {
		t.Errorf("PutObject calls = %d, want 1 (the zip was already there)", n)
	}
	if len(h.questions) != 0 {
		t.Errorf("asked %q with nothing to change", h.questions)
	}
	if !strings.Contains(h.log.String(), "apg-net: no changes") {
		t.Errorf("log:\n%s", h.log)
	}
}

func TestFakeUpdate(t *testing.T) {
	h := newFakeHarness(t)
	h.f.EventPageSize = 2 // events come in pages: every page up to the last seen event is read
	h.mustUp(t, testStacks(false))
	h.log.Reset()
	res := h.mustUp(t, testStacks(true))
	if got, want := actionsOf(res), []string{"apg-net:updated", "apg-bastion:unchanged", "apg-db:refreshed"}; !equal(got, want) {
		t.Fatalf("actions = %v, want %v", got, want)
	}
	ch := res.Stacks[0].Changes
	if len(ch) != 1 || ch[0].Action != "Add" || ch[0].LogicalID != "SubnetBPrivate" || ch[0].Type != "AWS::EC2::Subnet" {
		t.Errorf("changes = %+v", ch)
	}
	if st, _ := h.f.Stack(netName); st.Status != "UPDATE_COMPLETE" {
		t.Errorf("network status %s", st.Status)
	}
	// Every event of the update was shown once, in order, none of the create's.
	var seen []string
	for _, line := range strings.Split(h.log.String(), "\n") {
		if strings.Contains(line, "  apg-net ") {
			f := strings.Fields(line)
			seen = append(seen, f[2]+" "+f[3])
		}
	}
	want := []string{"UPDATE_IN_PROGRESS apg-net", "CREATE_IN_PROGRESS SubnetBPrivate", "CREATE_COMPLETE SubnetBPrivate", "UPDATE_COMPLETE apg-net"}
	if !equal(seen, want) {
		t.Errorf("events shown %q, want %q\n%s", seen, want, h.log)
	}

	// A parameter change modifies the resources that use it, with their replacement column.
	list := testStacks(true)
	list[0].Parameters[0].ParameterValue = "43"
	res = h.mustUp(t, list)
	ch = res.Stacks[0].Changes
	if len(ch) != 1 || ch[0].Action != "Modify" || ch[0].LogicalID != "VPC" || ch[0].Replacement != "False" {
		t.Errorf("changes = %+v", ch)
	}
}

func TestFakeFailedCreateReportsRootCause(t *testing.T) {
	h := newFakeHarness(t)
	h.f.FailResource(dbName, "AuroraDBCluster", "The engine version 99.1 is not available for aurora-postgresql")
	_, err := h.up(t, testStacks(false), UpOptions{})
	var se *StackError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want a StackError\n%s", err, h.log)
	}
	if se.Stack != dbName || se.Status != "ROLLBACK_COMPLETE" || !se.RolledBack {
		t.Errorf("stack error = %+v", se)
	}
	if se.Cause == nil || se.Cause.LogicalID != "AuroraDBCluster" || !strings.Contains(se.Cause.Reason, "engine version 99.1") {
		t.Fatalf("root cause = %+v", se.Cause)
	}
	// The next resource was cancelled because of it, and that is not the cause.
	if !strings.Contains(h.log.String(), "Resource creation cancelled") {
		t.Errorf("no cancelled resource in the events:\n%s", h.log)
	}
	if msg := err.Error(); !strings.Contains(msg, "AuroraDBCluster") || !strings.Contains(msg, "engine version 99.1") {
		t.Errorf("message %q", msg)
	}
	if st, _ := h.f.Stack(dbName); st.Status != "ROLLBACK_COMPLETE" {
		t.Errorf("db status %s", st.Status)
	}
}

func TestFakeFailedUpdateRollsBack(t *testing.T) {
	h := newFakeHarness(t)
	h.mustUp(t, testStacks(false))
	h.f.FailResource(netName, "SubnetBPrivate", "The CIDR '10.42.1.0/24' conflicts with another subnet")
	_, err := h.up(t, testStacks(true), UpOptions{})
	var se *StackError
	if !errors.As(err, &se) || se.Status != "UPDATE_ROLLBACK_COMPLETE" || !se.RolledBack || se.Cause == nil || se.Cause.LogicalID != "SubnetBPrivate" {
		t.Fatalf("err = %v (%+v)", err, se)
	}
	if st, _ := h.f.Stack(netName); len(st.Resources) != 2 {
		t.Errorf("rolled back stack holds %v", st.Resources)
	}
	// Once the cause is gone, the same update goes through from UPDATE_ROLLBACK_COMPLETE.
	res := h.mustUp(t, testStacks(true))
	if res.Stacks[0].Action != "updated" {
		t.Errorf("actions %v", actionsOf(res))
	}
}

func TestFakeRootCauseInsideTheRotationNestedStack(t *testing.T) {
	h := newFakeHarness(t)
	h.f.FailResource(dbName, "SecretRotationScheduleRotationApplication/RotationLambda",
		"Resource handler returned message: \"Subnet ids are not in the same VPC\"")
	_, err := h.up(t, testStacks(false), UpOptions{})
	var se *StackError
	if !errors.As(err, &se) || se.Cause == nil {
		t.Fatalf("err = %v\n%s", err, h.log)
	}
	if se.Cause.LogicalID != "RotationLambda" || !strings.Contains(se.Cause.Reason, "Subnet ids are not in the same VPC") ||
		!strings.Contains(se.Cause.Stack, "SecretRotationScheduleRotationApplication") {
		t.Errorf("root cause %+v", se.Cause)
	}
	if !strings.Contains(err.Error(), "[in nested stack ") {
		t.Errorf("message %q", err)
	}
}

func TestFakeRootCauseSkipsCancellations(t *testing.T) {
	at := func(s int) time.Time { return time.Unix(int64(s), 0) }
	events := []progress.Event{
		{LogicalID: "B", Status: "CREATE_FAILED", Reason: "Resource creation cancelled", Time: at(3)},
		{LogicalID: "Stack", Status: "CREATE_FAILED", Reason: "Embedded stack arn:x was not successfully created", Time: at(1)},
		{LogicalID: "A", Status: "CREATE_FAILED", Reason: "quota exceeded", Time: at(2)},
		{LogicalID: "C", Status: "CREATE_FAILED", Reason: "later", Time: at(4)},
	}
	if c := RootCause(events); c == nil || c.LogicalID != "A" {
		t.Errorf("root cause = %+v, want A", c)
	}
	if c := RootCause(events[:2]); c == nil || c.LogicalID != "Stack" {
		t.Errorf("fallback root cause = %+v", c)
	}
	if c := RootCause(nil); c != nil {
		t.Errorf("root cause of nothing = %+v", c)
	}
}

func TestFakeRollbackCompleteIsRecreated(t *testing.T) {
	h := newFakeHarness(t)
	body, _ := netTemplate(false).YAML()
	if err := h.f.PutStack(netName, "ROLLBACK_COMPLETE", string(body), map[string]string{"ClassB": "42"}); err != nil {
		t.Fatal(err)
	}
	// Declined: nothing is deleted.
	h.answer = errors.New("cancelled")
	if _, err := h.up(t, testStacks(false)[:1], UpOptions{}); err == nil || err.Error() != "cancelled" {
		t.Fatalf("err = %v", err)
	}
	if len(h.f.CallsOf("DeleteStack")) != 0 {
		t.Fatal("deleted without consent")
	}
	// Accepted: deleted, then created.
	h.answer = nil
	h.questions = nil
	res := h.mustUp(t, testStacks(false)[:1])
	if len(h.questions) < 1 || !strings.Contains(h.questions[0], "Delete stack apg-net and create it again") {
		t.Errorf("questions = %q", h.questions)
	}
	if n := len(h.f.CallsOf("DeleteStack")); n != 1 {
		t.Errorf("DeleteStack calls = %d", n)
	}
	if st, _ := h.f.Stack(netName); st.Status != "CREATE_COMPLETE" || res.Stacks[0].Action != "created" {
		t.Errorf("status %s, action %s", st.Status, res.Stacks[0].Action)
	}
}

// TestFakeDryRunOnRollbackComplete: a dry run on a stack left in ROLLBACK_COMPLETE previews the
// re-creation as a CREATE change set for a temporary stack (the fake, like CloudFormation,
// refuses a CREATE change set for the existing name), deletes nothing and leaves nothing.
func TestFakeDryRunOnRollbackComplete(t *testing.T) {
	h := newFakeHarness(t)
	body, _ := netTemplate(false).YAML()
	if err := h.f.PutStack(netName, "ROLLBACK_COMPLETE", string(body), map[string]string{"ClassB": "42"}); err != nil {
		t.Fatal(err)
	}
	res, err := h.up(t, testStacks(false)[:1], UpOptions{DryRun: true})
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, h.log)
	}
	if got := actionsOf(res); !equal(got, []string{"apg-net:dry-run"}) || len(res.Stacks[0].Changes) == 0 {
		t.Errorf("actions = %v, changes %v", got, res.Stacks[0].Changes)
	}
	if !strings.Contains(h.log.String(), "previewed as stack apg-net-apgstack-dry-run") {
		t.Errorf("log:\n%s", h.log)
	}
	if len(h.f.CallsOf("ExecuteChangeSet")) != 0 || len(h.questions) != 0 {
		t.Errorf("dry run executed or asked: %v", h.f.Actions(""))
	}
	if st, _ := h.f.Stack(netName); st.Status != "ROLLBACK_COMPLETE" {
		t.Errorf("the stack is %s, want it left in ROLLBACK_COMPLETE", st.Status)
	}
	if st, ok := h.f.Stack(dryRunStackName(netName)); ok {
		t.Errorf("the preview stack is left in %s", st.Status)
	}
	if got := dryRunStackName(strings.Repeat("n", 128)); len(got) != 128 {
		t.Errorf("preview name of a 128-character stack is %d characters", len(got))
	}
}

func TestFakeStuckStateIsExplained(t *testing.T) {
	h := newFakeHarness(t)
	body, _ := netTemplate(false).YAML()
	if err := h.f.PutStack(netName, "UPDATE_ROLLBACK_FAILED", string(body), map[string]string{"ClassB": "42"}); err != nil {
		t.Fatal(err)
	}
	_, err := h.up(t, testStacks(false)[:1], UpOptions{})
	var se *StackError
	if !errors.As(err, &se) || se.Status != "UPDATE_ROLLBACK_FAILED" || !strings.Contains(err.Error(), "aws cloudformation continue-update-rollback --stack-name apg-net") {
		t.Fatalf("err = %v", err)
	}
	if len(h.f.CallsOf("CreateChangeSet")) != 0 {
		t.Error("a change set was created for a stuck stack")
	}
	st, err := h.d.Status(context.Background(), []StackRef{{stacks.Network, netName}})
	if err != nil || !strings.Contains(st[0].Hint, "continue-update-rollback") {
		t.Errorf("status hint: %v %+v", err, st)
	}
}

func TestFakeDryRunLeavesNothing(t *testing.T) {
	h := newFakeHarness(t)
	res, err := h.up(t, testStacks(false), UpOptions{DryRun: true})
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, h.log)
	}
	// The network's change set is shown; the others cannot resolve imports of a network that
	// is not there, which a dry run on a new account reports and goes past.
	if got, want := actionsOf(res), []string{"apg-net:dry-run", "apg-bastion:failed", "apg-db:failed"}; !equal(got, want) {
		t.Errorf("actions = %v, want %v", got, want)
	}
	if !strings.Contains(h.log.String(), "No export named apg-net-VPC found") {
		t.Errorf("log:\n%s", h.log)
	}
	if len(h.f.CallsOf("ExecuteChangeSet")) != 0 || len(h.f.CallsOf("PutObject")) != 0 || len(h.questions) != 0 {
		t.Errorf("dry run executed, uploaded or asked: %v", h.f.Actions(""))
	}
	for _, n := range []string{netName, bastName, dbName} {
		if st, ok := h.f.Stack(n); ok {
			t.Errorf("dry run left stack %s in %s", n, st.Status)
		}
	}
	// After a deploy, a dry run shows the update and removes its change set.
	h.mustUp(t, testStacks(false))
	h.log.Reset()
	res, err = h.up(t, testStacks(true), UpOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := actionsOf(res); !equal(got, []string{"apg-net:dry-run", "apg-bastion:unchanged", "apg-db:dry-run"}) {
		t.Errorf("actions = %v", got)
	}
	if !strings.Contains(h.log.String(), "SubnetBPrivate") {
		t.Errorf("log:\n%s", h.log)
	}
	if st, _ := h.f.Stack(netName); len(st.Resources) != 2 {
		t.Errorf("dry run changed the stack: %v", st.Resources)
	}
}

func TestFakeCtrlCDuringWait(t *testing.T) {
	h := newFakeHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	polls := 0
	h.f.OnCall = func(c awsfake.Call) {
		if c.Action == "DescribeStacks" && len(h.f.CallsOf("ExecuteChangeSet")) > 0 {
			polls++
			if polls == 1 { // the user presses Ctrl-C while CloudFormation works
				cancel()
			}
		}
	}
	_, err := h.d.Up(ctx, testStacks(false)[:1], UpOptions{Bootstrap: packager})
	var ie *InterruptedError
	if !errors.As(err, &ie) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want an InterruptedError", err)
	}
	if !strings.Contains(err.Error(), "apgstack status --target aws") || !strings.Contains(err.Error(), "nothing was cancelled") {
		t.Errorf("message %q", err)
	}
	for _, a := range []string{"CancelUpdateStack", "DeleteStack", "DeleteChangeSet"} {
		if len(h.f.CallsOf(a)) != 0 {
			t.Errorf("%s was called after Ctrl-C", a)
		}
	}
	if st, _ := h.f.Stack(netName); st.Status != "CREATE_IN_PROGRESS" {
		t.Errorf("stack status %s, want CREATE_IN_PROGRESS (left to CloudFormation)", st.Status)
	}
}

func TestFakeTeardownBlockedByImport(t *testing.T) {
	h := newFakeHarness(t)
	h.mustUp(t, testStacks(false))
	// A second database stack in the Region uses the same network.
	other := dbTemplate()
	body, _ := other.YAML()
	if err := h.f.PutStack("other-db", "CREATE_COMPLETE", string(body), map[string]string{"ParentVPCStack": netName, "ParentSSHBastionStack": bastName}); err != nil {
		t.Fatal(err)
	}
	_, err := h.d.Down(context.Background(), downRefs(), DownOptions{})
	var ie *ImportedError
	if !errors.As(err, &ie) {
		t.Fatalf("err = %v, want ImportedError", err)
	}
	if ie.Stack != bastName || !equal(ie.Importers, []string{"other-db"}) || !strings.Contains(err.Error(), "imported by stack other-db") {
		t.Errorf("error %q", err)
	}
	if len(h.f.CallsOf("DeleteStack")) != 0 || len(h.questions) != 3 {
		t.Errorf("deleted something (%d) or asked (%q)", len(h.f.CallsOf("DeleteStack")), h.questions)
	}
	if len(h.f.CallsOf("ListImports")) == 0 {
		t.Error("ListImports was not asked")
	}
}

func downRefs() []StackRef {
	return []StackRef{{stacks.Database, dbName}, {stacks.Bastion, bastName}, {stacks.Network, netName}}
}

func TestFakeDownInOrderKeepsFinalSnapshot(t *testing.T) {
	h := newFakeHarness(t)
	h.mustUp(t, testStacks(false))
	h.questions = nil
	res, err := h.d.Down(context.Background(), downRefs(), DownOptions{})
	if err != nil {
		t.Fatalf("down: %v\n%s", err, h.log)
	}
	var order []string
	for _, c := range h.f.CallsOf("DeleteStack") {
		order = append(order, c.Form.Get("StackName"))
	}
	for i, want := range []string{dbName, bastName, netName} {
		if i >= len(order) || !strings.Contains(order[i], "/"+want+"/") {
			t.Fatalf("delete order = %v", order)
		}
	}
	if len(h.questions) != 1 || !strings.Contains(h.questions[0], "apg-db, apg-bastion, apg-net") {
		t.Errorf("questions = %q", h.questions)
	}
	snaps := h.f.Snapshots()
	if len(snaps) != 1 || res.FinalSnapshot != snaps[0] || !strings.Contains(h.log.String(), "final snapshot kept: "+snaps[0]) {
		t.Errorf("final snapshot %q, fake has %v\n%s", res.FinalSnapshot, snaps, h.log)
	}
	for _, n := range []string{netName, bastName, dbName} {
		if _, ok := h.f.Stack(n); ok {
			t.Errorf("stack %s still there", n)
		}
	}
	// Again: nothing left, nothing done.
	res, err = h.d.Down(context.Background(), downRefs(), DownOptions{})
	if err != nil || len(res.Missing) != 3 {
		t.Errorf("second down: %v %+v", err, res)
	}
}

func TestFakeDownDeletionProtection(t *testing.T) {
	h := newFakeHarness(t)
	list := testStacks(false)
	list[2].Parameters = append(list[2].Parameters, stacks.Param{ParameterKey: "DeletionProtection", ParameterValue: "true"})
	h.mustUp(t, list)
	cl := h.f.Clusters()
	if len(cl) != 1 || !cl[0].DeletionProtection {
		t.Fatalf("clusters %+v", cl)
	}
	_, err := h.d.Down(context.Background(), downRefs(), DownOptions{})
	var pe *ProtectedError
	if !errors.As(err, &pe) || pe.Cluster != cl[0].ID || !strings.Contains(err.Error(), "--disable-deletion-protection") {
		t.Fatalf("err = %v", err)
	}
	if len(h.f.CallsOf("DeleteStack")) != 0 {
		t.Fatal("deleted a protected cluster's stack")
	}
	if _, err := h.d.Down(context.Background(), downRefs(), DownOptions{DisableDeletionProtection: true}); err != nil {
		t.Fatalf("down: %v\n%s", err, h.log)
	}
	mods := h.f.CallsOf("ModifyDBCluster")
	if len(mods) != 1 || mods[0].Form.Get("DeletionProtection") != "false" || mods[0].Form.Get("DBClusterIdentifier") != cl[0].ID {
		t.Errorf("ModifyDBCluster calls %+v", mods)
	}
}

func TestFakeStatusAndOutputs(t *testing.T) {
	h := newFakeHarness(t)
	refs := []StackRef{{stacks.Network, netName}, {stacks.Bastion, bastName}, {stacks.Database, dbName}}
	st, err := h.d.Status(context.Background(), refs)
	if err != nil || len(st) != 3 || st[0].Status != "NOT_FOUND" || st[0].Exists {
		t.Fatalf("status before: %v %+v", err, st)
	}
	h.mustUp(t, testStacks(false))
	st, err = h.d.Status(context.Background(), refs)
	if err != nil {
		t.Fatal(err)
	}
	if st[0].Status != "CREATE_COMPLETE" || len(st[0].Outputs) != 1 || st[0].Outputs[0].Export != "apg-net-VPC" {
		t.Errorf("network status %+v", st[0])
	}
	if s := Summarize(st, "eu-west-1"); s.ClusterEndpoint == "" || s.SSHCommand == "" {
		t.Errorf("summary %+v", s)
	}
}

func TestFakeLargeTemplateGoesThroughS3(t *testing.T) {
	h := newFakeHarness(t)
	list := testStacks(false)
	db := list[2]
	db.Template.Description = strings.Repeat("x", 60000) // over the inline limit
	res, err := h.up(t, list, UpOptions{})
	if err != nil {
		t.Fatalf("up: %v\n%s", err, h.log)
	}
	if res.Stacks[2].Action != "created" {
		t.Errorf("actions %v", actionsOf(res))
	}
	c := h.f.CallsOf("CreateChangeSet")[2].Form
	if c.Get("TemplateBody") != "" || !strings.HasPrefix(c.Get("TemplateURL"), "https://"+bucket+".s3.eu-west-1.amazonaws.com/apgstack/templates/apg-db-") {
		t.Errorf("template passed as body %d bytes, URL %q", len(c.Get("TemplateBody")), c.Get("TemplateURL"))
	}
	// Without a bucket, a template whose compact JSON fits goes inline as JSON.
	h3 := newFakeHarness(t)
	list = testStacks(false)
	var tags []any
	for i := 0; i < 400; i++ { // YAML's indentation makes this larger than compact JSON
		tags = append(tags, cft.Tag("k", "v"))
	}
	list[0].Template.Description = strings.Repeat("x", 38000)
	list[0].Template.AddResource("Padding", "AWS::EC2::Subnet", map[string]any{"VpcId": cft.Ref("VPC"), "Tags": tags})
	if y, _ := list[0].Template.YAML(); len(y) <= MaxTemplateBody {
		t.Fatalf("test template is only %d bytes", len(y))
	}
	if _, err := h3.up(t, list[:1], UpOptions{}); err != nil {
		t.Fatalf("up: %v", err)
	}
	if c := h3.f.CallsOf("CreateChangeSet")[0].Form; !strings.HasPrefix(c.Get("TemplateBody"), "{") || len(c.Get("TemplateBody")) > MaxTemplateBody {
		t.Errorf("template body %d bytes starting %q", len(c.Get("TemplateBody")), c.Get("TemplateBody")[:10])
	}
	// Without a bucket, and too large even as JSON, it goes to the account's assets bucket,
	// created after confirmation; declined, it fails clearly before any change set.
	h2 := newFakeHarness(t)
	list = testStacks(false)
	list[0].Template.Description = strings.Repeat("x", 60000)
	h2.answer = errors.New("cancelled")
	_, err = h2.up(t, list[:1], UpOptions{})
	if err == nil || !strings.Contains(err.Error(), "51200-byte limit") || !strings.Contains(err.Error(), "database.bootstrapS3Bucket") || len(h2.f.CallsOf("CreateChangeSet")) != 0 {
		t.Errorf("declined: err = %v", err)
	}
	h2.answer = nil
	if _, err := h2.up(t, list[:1], UpOptions{}); err != nil {
		t.Fatalf("up with the assets bucket: %v", err)
	}
	assets := AssetsBucketName(h2.f.Account, h2.f.Region)
	if u := h2.f.CallsOf("CreateChangeSet")[0].Form.Get("TemplateURL"); !strings.Contains(u, assets) {
		t.Errorf("template URL %q, want the assets bucket %s", u, assets)
	}
	if n := len(h2.f.CallsOf("CreateBucket")); n != 1 {
		t.Errorf("%d CreateBucket calls", n)
	}
	// When S3 refuses, it fails clearly before any change set.
	h4 := newFakeHarness(t)
	h4.f.Deny = map[string]bool{"s3": true}
	list = testStacks(false)
	list[0].Template.Description = strings.Repeat("x", 60000)
	_, err = h4.up(t, list[:1], UpOptions{})
	if err == nil || !strings.Contains(err.Error(), "51200-byte limit") || !strings.Contains(err.Error(), "database.bootstrapS3Bucket") || len(h4.f.CallsOf("CreateChangeSet")) != 0 {
		t.Errorf("err = %v", err)
	}
}

func TestFakeBootstrapUploadSkippedWhenPresentOrOff(t *testing.T) {
	h := newFakeHarness(t)
	// Already uploaded (same key): HeadObject finds it, no upload.
	h.f.AddBucket(bucket)
	list := testStacks(false)
	if _, err := h.d.bootstrapZip(context.Background(), list[2], UpOptions{Bootstrap: packager}); err != nil {
		t.Fatal(err)
	}
	if len(h.f.CallsOf("PutObject")) != 1 {
		t.Fatal("first upload missing")
	}
	st, err := h.d.bootstrapZip(context.Background(), list[2], UpOptions{Bootstrap: packager})
	if err != nil || len(h.f.CallsOf("PutObject")) != 1 || param(st, stacks.ParamBootstrapKey) != zipKey {
		t.Errorf("second: err %v, puts %d, key %q", err, len(h.f.CallsOf("PutObject")), param(st, stacks.ParamBootstrapKey))
	}
	// A key set in the configuration: looked for first; built and uploaded when missing and it
	// is this checkout's; refused when it names another build.
	h.f.AddBucket("b2")
	keyed := withParam(withParam(list[2], stacks.ParamBootstrapBucket, "b2"), stacks.ParamBootstrapKey, zipKey)
	if _, err := h.d.bootstrapZip(context.Background(), keyed, UpOptions{Bootstrap: packager}); err != nil {
		t.Fatal(err)
	}
	if b, ok := h.f.Object("b2", zipKey); !ok || !bytes.Equal(b, zipBytes) {
		t.Error("the configured key was not uploaded")
	}
	other := withParam(keyed, stacks.ParamBootstrapKey, "bootstrap/other.zip")
	if _, err := h.d.bootstrapZip(context.Background(), other, UpOptions{Bootstrap: packager}); err == nil || !strings.Contains(err.Error(), "this checkout builds "+zipKey) {
		t.Errorf("err = %v", err)
	}
	puts := len(h.f.CallsOf("PutObject"))
	if _, err := h.d.bootstrapZip(context.Background(), keyed, UpOptions{Bootstrap: PackagerFunc(func(context.Context) ([]byte, string, error) {
		t.Error("built although the zip is there")
		return nil, "", nil
	})}); err != nil || len(h.f.CallsOf("PutObject")) != puts {
		t.Errorf("err %v, uploaded again", err)
	}
	// Restoring from a snapshot: no bootstrap, nothing uploaded.
	snap := withParam(list[2], stacks.ParamSnapshot, "snap-1")
	snap = withParam(snap, stacks.ParamBootstrapBucket, "other-bucket")
	if _, err := h.d.bootstrapZip(context.Background(), snap, UpOptions{Bootstrap: packager}); err != nil {
		t.Fatal(err)
	}
	// A bucket that does not exist is named.
	nob := withParam(list[2], stacks.ParamBootstrapBucket, "no-such-bucket")
	if _, err := h.d.bootstrapZip(context.Background(), nob, UpOptions{Bootstrap: packager}); err == nil || !strings.Contains(err.Error(), "no-such-bucket does not exist") {
		t.Errorf("err = %v", err)
	}
}

func TestFakePreflight(t *testing.T) {
	h := newFakeHarness(t)
	ws := h.d.Preflight(context.Background())
	if len(ws) != 3 {
		t.Fatalf("warnings = %v", ws)
	}
	for i, want := range []string{"aws cloudtrail create-trail", "aws configservice start-configuration-recorder", "aws guardduty create-detector --enable"} {
		if !strings.Contains(ws[i].Fix, want) {
			t.Errorf("warning %d fix %q lacks %q", i, ws[i].Fix, want)
		}
	}
	h.f.CloudTrailLogging, h.f.ConfigRecording, h.f.GuardDutyEnabled = true, true, true
	if ws := h.d.Preflight(context.Background()); len(ws) != 0 {
		t.Errorf("warnings with everything on: %v", ws)
	}
	// A role that may not read GuardDuty gets a warning, not a failure.
	h.f.Deny = map[string]bool{"guardduty": true}
	if ws := h.d.Preflight(context.Background()); len(ws) != 1 || !strings.Contains(ws[0].String(), "GuardDuty: could not check") {
		t.Errorf("warnings = %v", ws)
	}
	h.f.Deny = nil
	for _, a := range []string{"DescribeTrails", "GetTrailStatus", "DescribeConfigurationRecorderStatus", "ListDetectors", "GetDetector"} {
		if len(h.f.CallsOf(a)) == 0 {
			t.Errorf("%s not called", a)
		}
	}
}

func TestFakeRefusedCredentials(t *testing.T) {
	h := newFakeHarness(t)
	if id, err := h.d.Identity(context.Background()); err != nil || id.Account != "123456789012" {
		t.Fatalf("identity %+v %v", id, err)
	}
	h.f.DenyAuth = true
	_, err := h.d.Identity(context.Background())
	var ae *AuthError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "InvalidClientTokenId") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "fake-secret-key") {
		t.Error("the secret key reached the error")
	}
}

var _ = aws.String
