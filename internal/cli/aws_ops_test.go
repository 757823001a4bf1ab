package cli

// failover and rotate-secret on target aws, through cli.Main's command tree, against awsfake, an
// in-process FAKE of the AWS APIs (no AWS endpoint is reachable where apgstack is built); the
// harness (awsEnv, runAWS) is aws_test.go's.

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/apgstack/apgstack/internal/aws/deploy"
	"github.com/apgstack/apgstack/internal/aws/stacks"
	"github.com/apgstack/apgstack/internal/testkit/awsfake"
)

// upFake deploys the real stacks of a stage into the fake, with the bootstrap (so the
// application roles' secrets exist), and returns the extra flags later commands need.
func upFake(t *testing.T, f *awsfake.Fake, stage string, more ...string) []string {
	t.Helper()
	f.AddBucket(fakeBucket)
	awsEnv(t, f)
	flags := append([]string{"--set", "environment.stage=" + stage, "--set", "database.bootstrapS3Bucket=" + fakeBucket,
		"--set", "database.bootstrapS3Key=apgstack/bootstrap-lambda-0123456789ab.zip"}, more...)
	if code, _, stderr := runAWS(t, append([]string{"up", "--yes"}, flags...)...); code != ExitOK {
		t.Fatalf("up: exit %d\n%s", code, stderr)
	}
	return flags
}

func TestFakeCLIFailover(t *testing.T) {
	f := awsfake.New(t)
	flags := upFake(t, f, "pre-prod")
	cs := f.Clusters()
	if len(cs) != 1 {
		t.Fatalf("clusters %+v", cs)
	}
	instances, writer := f.ClusterMembers(cs[0].ID)
	if len(instances) != 2 || writer != instances[0] {
		t.Fatalf("pre-prod members %v, writer %s", instances, writer)
	}

	// Without --yes and without a terminal: refused, nothing done.
	code, _, stderr := runAWS(t, append([]string{"failover"}, flags...)...)
	if code == ExitOK || len(f.CallsOf("FailoverDBCluster")) != 0 {
		t.Fatalf("unconfirmed failover: exit %d\n%s", code, stderr)
	}

	code, stdout, stderr := runAWS(t, append([]string{"failover", "--yes", "--region", "eu-west-1"}, flags...)...)
	if code != ExitOK {
		t.Fatalf("failover: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stdout, instances[1]+" is the writer of cluster "+cs[0].ID+" now (was "+instances[0]+")") {
		t.Errorf("failover stdout:\n%s", stdout)
	}
	if _, w := f.ClusterMembers(cs[0].ID); w != instances[1] {
		t.Errorf("writer %s, want %s", w, instances[1])
	}

	// Back, to a named target, as JSON.
	code, stdout, stderr = runAWS(t, append([]string{"failover", "--yes", "-o", "json", "--target-instance", instances[0]}, flags...)...)
	var res deploy.FailoverResult
	if code != ExitOK || json.Unmarshal([]byte(stdout), &res) != nil {
		t.Fatalf("failover json: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if res.OldWriter != instances[1] || res.NewWriter != instances[0] {
		t.Errorf("result %+v", res)
	}

	// A target that is no reader: bad input, exit 2.
	code, _, stderr = runAWS(t, append([]string{"failover", "--yes", "--target-instance", "nope"}, flags...)...)
	if code != ExitUsage || !strings.Contains(stderr, `"nope"`) {
		t.Errorf("bad target: exit %d\n%s", code, stderr)
	}
}

func TestFakeCLIFailoverSingleInstance(t *testing.T) {
	f := awsfake.New(t)
	flags := upFake(t, f, "dev")
	code, _, stderr := runAWS(t, append([]string{"failover", "--yes"}, flags...)...)
	if code != ExitFailure || !strings.Contains(stderr, "no failover target") || len(f.CallsOf("FailoverDBCluster")) != 0 {
		t.Errorf("dev failover: exit %d\n%s", code, stderr)
	}
}

func TestFakeCLIRotateSecret(t *testing.T) {
	f := awsfake.New(t)
	flags := upFake(t, f, "dev")
	db, _ := f.Stack("apgstack-database")

	code, stdout, stderr := runAWS(t, append([]string{"rotate-secret"}, flags...)...) // master by default
	if code != ExitOK {
		t.Fatalf("rotate master: exit %d\n%s", code, stderr)
	}
	master := db.Outputs["SecretArn"]
	if rot := f.Rotations(); len(rot) != 1 || rot[0].SecretID != master || !rot[0].RotateImmediately {
		t.Errorf("rotations %+v, want the master secret %s", rot, master)
	}
	for _, want := range []string{"master", master, "aws secretsmanager describe-secret --secret-id " + master} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}

	code, stdout, stderr = runAWS(t, append([]string{"rotate-secret", "--role", "all", "-o", "json"}, flags...)...)
	var res []deploy.SecretRotation
	if code != ExitOK || json.Unmarshal([]byte(stdout), &res) != nil {
		t.Fatalf("rotate all: exit %d\n%s\n%s", code, stdout, stderr)
	}
	var roles []string
	for _, r := range res {
		roles = append(roles, r.Role)
	}
	if strings.Join(roles, ",") != "master,owner,rw,ro" || len(f.Rotations()) != 5 {
		t.Errorf("roles %v, rotations %d", roles, len(f.Rotations()))
	}

	code, _, stderr = runAWS(t, append([]string{"rotate-secret", "--role", "admin"}, flags...)...)
	if code != ExitUsage || !strings.Contains(stderr, `--role "admin"`) || len(f.Rotations()) != 5 {
		t.Errorf("unknown role: exit %d\n%s", code, stderr)
	}

	// No secret value reaches the output.
	if strings.Contains(stdout+stderr, "fake-generated-password") {
		t.Error("a secret value was printed")
	}
}

// TestFakeUpUsesTheAssetsBucket: with no bucket configured, up (against the FAKE of the AWS
// APIs) creates the account's assets bucket after confirmation and deploys the bootstrap Lambda
// from it, as cdk bootstrap's bucket serves CDK.
func TestFakeUpUsesTheAssetsBucket(t *testing.T) {
	f := awsfake.New(t) // a FAKE of the AWS APIs
	awsEnv(t, f)
	if code, _, stderr := runAWS(t, "up", "--yes"); code != ExitOK {
		t.Fatalf("up: exit %d\n%s", code, stderr)
	}
	bucket := deploy.AssetsBucketName(f.Account, "eu-west-1")
	if _, ok := f.BucketConfig(bucket, "versioning"); !ok {
		t.Fatalf("no assets bucket %s", bucket)
	}
	db, _ := f.Stack("apgstack-database")
	key := db.Parameters[stacks.ParamBootstrapKey]
	if db.Parameters[stacks.ParamBootstrapBucket] != bucket || key == "" {
		t.Fatalf("the database stack's bootstrap parameters: %v", db.Parameters)
	}
	if _, ok := f.Object(bucket, key); !ok {
		t.Errorf("the bootstrap zip %s is not in %s", key, bucket)
	}
}
