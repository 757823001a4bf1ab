package cli

// The AWS target's commands run here against awsfake, an in-process FAKE of the AWS APIs (no
// AWS endpoint is reachable where apgstack is built): the SDK finds it through AWS_ENDPOINT_URL
// and static credentials in the environment, as it would find LocalStack.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apgstack/apgstack/internal/aws/deploy"
	"github.com/apgstack/apgstack/internal/testkit/awsfake"
)

const fakeBucket = "apg-fake-artifacts"

var fakeZip = []byte("PK\x03\x04 fake bootstrap zip")

// awsEnv points the SDK at the fake with static credentials, and nothing else.
func awsEnv(t *testing.T, f *awsfake.Fake) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL": f.URL, "AWS_ACCESS_KEY_ID": "AKIDFAKE", "AWS_SECRET_ACCESS_KEY": "fake-secret", "AWS_SESSION_TOKEN": "",
		"AWS_PROFILE": "", "AWS_REGION": "", "AWS_DEFAULT_REGION": "", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "",
	} {
		t.Setenv(k, v)
	}
	awsTestKnobs = AWSKnobs{Poll: time.Millisecond, ChangeSetPoll: time.Millisecond,
		Packager: deploy.PackagerFunc(func(context.Context) ([]byte, string, error) {
			return fakeZip, "apgstack/bootstrap-lambda-0123456789ab.zip", nil
		})}
	t.Cleanup(func() { awsTestKnobs = AWSKnobs{} })
}

// awsTestKnobs are the AWS settings runAWS gives the App of the test that set them (awsEnv).
var awsTestKnobs AWSKnobs

// runAWS runs the command line with the AWS flags on up, down and status.
func runAWS(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runAWSCtx(t, context.Background(), args...)
}

func runAWSCtx(t *testing.T, ctx context.Context, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	a := &App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, AWS: awsTestKnobs}
	root := NewRootCmd(a)
	for _, c := range root.Commands() {
		switch c.Name() {
		case "up", "down", "status":
			addAWSFlags(c)
		}
	}
	cfgPath := filepath.Join(t.TempDir(), "apgstack.yaml")
	if err := os.WriteFile(cfgPath, nil, 0o600); err != nil { // empty: the defaults stand
		t.Fatal(err)
	}
	base := []string{"--config", cfgPath, "--target", "aws", "--set", "target.aws.region=eu-west-1"}
	// The command first, then the common flags, then the rest (which may end in -- psql args).
	root.SetArgs(append(append([]string{args[0]}, base...), args[1:]...))
	err := root.ExecuteContext(ctx)
	if err != nil {
		errb.WriteString("apgstack: " + err.Error() + "\n")
	}
	var ee *ExitError
	switch {
	case err == nil:
		code = ExitOK
	case errors.As(err, &ee):
		code = ee.Code
	default:
		code = ExitFailure
	}
	return code, out.String(), errb.String()
}

func TestFakeCLIUpStatusOutputsDown(t *testing.T) {
	f := awsfake.New(t)
	f.AddBucket(fakeBucket)
	awsEnv(t, f)
	bootstrap := []string{"--set", "database.bootstrapS3Bucket=" + fakeBucket, "--set", "database.bootstrapS3Key=apgstack/bootstrap-lambda-0123456789ab.zip"}

	code, stdout, stderr := runAWS(t, append([]string{"up", "--yes"}, bootstrap...)...)
	if code != ExitOK {
		t.Fatalf("up: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"ClusterEndpoint", "PSQLCommandLine", "SSHCommand", "aws secretsmanager get-secret-value --secret-id arn:aws:secretsmanager:"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("up stdout lacks %q:\n%s", want, stdout)
		}
	}
	for _, want := range []string{"AWS account 123456789012", "warning: GuardDuty", "aws guardduty create-detector --enable", "uploaded s3://" + fakeBucket, "CREATE_COMPLETE"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("up stderr lacks %q", want)
		}
	}
	db, ok := f.Stack("apgstack-database")
	if !ok || db.Status != "CREATE_COMPLETE" || db.Parameters["ParentVPCStack"] != "apgstack-network" || db.Parameters["ParentSSHBastionStack"] != "apgstack-bastion" ||
		db.Parameters["LambdaBootStrapS3Bucket"] != fakeBucket || db.Parameters["LambdaBootStrapS3Key"] != "apgstack/bootstrap-lambda-0123456789ab.zip" {
		t.Errorf("database stack %s, parameters %v", db.Status, db.Parameters)
	}

	code, stdout, stderr = runAWS(t, "status", "-o", "json")
	if code != ExitOK {
		t.Fatalf("status: exit %d\n%s", code, stderr)
	}
	var st []deploy.StackStatus
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatal(err)
	}
	if len(st) != 3 || st[0].Kind != "network" || st[2].Status != "CREATE_COMPLETE" {
		t.Errorf("status %+v", st)
	}
	code, stdout, _ = runAWS(t, "status")
	if code != ExitOK || !strings.Contains(stdout, "apgstack-bastion") || !strings.Contains(stdout, "CREATE_COMPLETE") {
		t.Errorf("status text:\n%s", stdout)
	}

	code, stdout, stderr = runAWS(t, "outputs")
	if code != ExitOK || !strings.Contains(stdout, "# apgstack-network (network): CREATE_COMPLETE") || !strings.Contains(stdout, "export apgstack-network-") ||
		!strings.Contains(stdout, "ReadSecretCommand") {
		t.Errorf("outputs: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, _ = runAWS(t, "outputs", "-o", "json")
	var outs awsOutputs
	if err := json.Unmarshal([]byte(stdout), &outs); err != nil || code != ExitOK {
		t.Fatalf("outputs json: %v %d", err, code)
	}
	if outs.Summary.ClusterEndpoint == "" || len(outs.Stacks) != 3 {
		t.Errorf("outputs json %+v", outs)
	}

	// Again: nothing to change, nothing asked.
	code, _, stderr = runAWS(t, append([]string{"up"}, bootstrap...)...)
	if code != ExitOK || strings.Count(stderr, ": no changes") != 3 {
		t.Errorf("re-run: exit %d\n%s", code, stderr)
	}

	// A dry run of a change shows it on stdout and removes it.
	code, stdout, stderr = runAWS(t, append([]string{"up", "--dry-run", "--set", "network.classB=7"}, bootstrap...)...)
	if code != ExitOK || !strings.Contains(stdout, "apgstack-network (update)") || !strings.Contains(stdout, "Modify") {
		t.Errorf("dry run: exit %d\n%s\n%s", code, stdout, stderr)
	}

	// Without --yes and without a terminal, down refuses instead of hanging.
	code, _, stderr = runAWS(t, "down")
	if code != ExitCancelled || !strings.Contains(stderr, "pass --yes") {
		t.Errorf("down without --yes: exit %d\n%s", code, stderr)
	}
	code, stdout, stderr = runAWS(t, "down", "--yes")
	if code != ExitOK || !strings.Contains(stdout, "final snapshot kept: apgstack-database-snapshot-") {
		t.Fatalf("down: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if _, ok := f.Stack("apgstack-network"); ok {
		t.Error("network still there")
	}
}

func TestFakeCLIRolledBackExitCode(t *testing.T) {
	f := awsfake.New(t)
	awsEnv(t, f)
	f.FailResource("apgstack-network", "VPC", "The maximum number of VPCs has been reached.")
	code, _, stderr := runAWS(t, "up", "--yes")
	if code != ExitRolledBack {
		t.Fatalf("exit %d, want %d\n%s", code, ExitRolledBack, stderr)
	}
	if !strings.Contains(stderr, "VPC (AWS::EC2::VPC) CREATE_FAILED: The maximum number of VPCs has been reached.") {
		t.Errorf("root cause not reported:\n%s", stderr)
	}
}

func TestFakeCLIRefusedCredentialsExit4(t *testing.T) {
	f := awsfake.New(t)
	awsEnv(t, f)
	f.DenyAuth = true
	code, _, stderr := runAWS(t, "status")
	if code != ExitAuth || !strings.Contains(stderr, "AWS refused the credentials") {
		t.Errorf("exit %d\n%s", code, stderr)
	}
}

func TestCLINoCredentialsFailsNamingWhatIsMissing(t *testing.T) {
	f := awsfake.New(t) // never reached: the check fails before any call
	awsEnv(t, f)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	code, _, stderr := runAWS(t, "up", "--yes")
	if code != ExitAuth || !strings.Contains(stderr, "no AWS credentials found") || !strings.Contains(stderr, "AWS_ACCESS_KEY_ID") {
		t.Errorf("exit %d\n%s", code, stderr)
	}
	if n := len(f.Calls()); n != 0 {
		t.Errorf("%d calls reached AWS", n)
	}
}

func TestFakeCLICtrlCExit130(t *testing.T) {
	f := awsfake.New(t)
	awsEnv(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.OnCall = func(c awsfake.Call) {
		if c.Action == "ExecuteChangeSet" {
			cancel() // Ctrl-C right after CloudFormation started
		}
	}
	code, _, stderr := runAWSCtx(t, ctx, "up", "--yes")
	if code != ExitInterrupted || !strings.Contains(stderr, "apgstack status --target aws") {
		t.Errorf("exit %d\n%s", code, stderr)
	}
	if len(f.CallsOf("CancelUpdateStack")) != 0 || len(f.CallsOf("DeleteStack")) != 0 {
		t.Error("the stack operation was cancelled")
	}
}
