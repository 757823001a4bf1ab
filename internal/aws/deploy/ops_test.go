package deploy

// Failover and rotation run through the real aws-sdk-go-v2 clients against awsfake, an
// in-process FAKE of CloudFormation, RDS and Secrets Manager (no AWS endpoint is reachable where
// apgstack is built). The fake's failover takes a fixed number of DescribeDBClusters calls, so
// the tests poll every millisecond and never wait on a clock.

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/apgstack/apgstack/cft"
	"github.com/apgstack/apgstack/internal/testkit/awsfake"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"
)

// opsTemplate is a database stack with the logical ids of stacks/database*.go: a cluster with a
// writer (and a reader), the master secret with its SecretArn output, and (with the bootstrap)
// the application roles' secrets, which have no outputs.
func opsTemplate(reader, appSecrets bool) *cft.Template {
	t := cft.New("database (ops test)")
	t.AddResource("AuroraMasterSecret", "AWS::SecretsManager::Secret", map[string]any{"Description": "master"})
	t.AddResource("AuroraDBCluster", "AWS::RDS::DBCluster", map[string]any{"Engine": "aurora-postgresql"})
	t.AddResource("AuroraDBFirstInstance", "AWS::RDS::DBInstance", map[string]any{"DBClusterIdentifier": cft.Ref("AuroraDBCluster")})
	if reader {
		t.AddResource("AuroraDBSecondInstance", "AWS::RDS::DBInstance", map[string]any{"DBClusterIdentifier": cft.Ref("AuroraDBCluster")})
	}
	if appSecrets {
		for _, l := range []string{"AppOwnerSecret", "AppReadWriteSecret", "AppReadOnlySecret"} {
			t.AddResource(l, "AWS::SecretsManager::Secret", map[string]any{"Description": l})
		}
	}
	t.AddOutput(&cft.Output{Name: "ClusterEndpoint", Value: cft.GetAtt("AuroraDBCluster", "Endpoint.Address")})
	t.AddOutput(&cft.Output{Name: "SecretArn", Value: cft.Ref("AuroraMasterSecret")})
	return t
}

func (h *harness) putDB(t *testing.T, reader, appSecrets bool) awsfake.StackState {
	t.Helper()
	body, err := opsTemplate(reader, appSecrets).YAML()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.f.PutStack(dbName, "CREATE_COMPLETE", string(body), nil); err != nil {
		t.Fatal(err)
	}
	st, _ := h.f.Stack(dbName)
	return st
}

func onlyCluster(t *testing.T, f *awsfake.Fake) string {
	t.Helper()
	cs := f.Clusters()
	if len(cs) != 1 {
		t.Fatalf("clusters %+v", cs)
	}
	return cs[0].ID
}

func TestFakeFailoverSwitchesWriter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target func(readers []string) string
	}{
		{"RDS picks", func([]string) string { return "" }},
		{"named target", func(r []string) string { return r[0] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHarness(t)
			h.putDB(t, true, false)
			cluster := onlyCluster(t, h.f)
			instances, writer := h.f.ClusterMembers(cluster)
			if len(instances) != 2 || writer != instances[0] {
				t.Fatalf("members %v, writer %s", instances, writer)
			}
			target := tc.target(instances[1:])
			res, err := h.d.Failover(context.Background(), dbName, target)
			if err != nil {
				t.Fatalf("failover: %v\n%s", err, h.log)
			}
			if res.Cluster != cluster || res.OldWriter != instances[0] || res.NewWriter != instances[1] || res.Duration <= 0 {
				t.Errorf("result %+v", res)
			}
			if _, w := h.f.ClusterMembers(cluster); w != instances[1] {
				t.Errorf("fake writer %s, want %s", w, instances[1])
			}
			calls := h.f.CallsOf("FailoverDBCluster")
			if len(calls) != 1 || calls[0].Form.Get("DBClusterIdentifier") != cluster || calls[0].Form.Get("TargetDBInstanceIdentifier") != target {
				t.Errorf("FailoverDBCluster calls %+v", calls)
			}
			// It waited through the failing-over answers: the one before, and the fake's steps.
			if n := len(h.f.CallsOf("DescribeDBClusters")); n != 1+awsfake.FailoverSteps {
				t.Errorf("%d DescribeDBClusters calls, want %d", n, 1+awsfake.FailoverSteps)
			}
			if len(h.questions) != 1 || !strings.Contains(h.questions[0], "Fail cluster "+cluster+" over from writer "+instances[0]) {
				t.Errorf("questions %q", h.questions)
			}
			if !strings.Contains(h.log.String(), "failing-over") {
				t.Errorf("log does not show the failover under way:\n%s", h.log)
			}
		})
	}
}

func TestFakeFailoverRefusals(t *testing.T) {
	t.Run("single instance", func(t *testing.T) {
		h := newFakeHarness(t)
		h.putDB(t, false, false)
		_, err := h.d.Failover(context.Background(), dbName, "")
		if err == nil || !strings.Contains(err.Error(), "single instance") || !strings.Contains(err.Error(), "no failover target") ||
			!strings.Contains(err.Error(), "pre-prod and prod have a reader") {
			t.Fatalf("err = %v", err)
		}
		if n := len(h.f.CallsOf("FailoverDBCluster")); n != 0 {
			t.Errorf("FailoverDBCluster called %d times", n)
		}
		// RDS itself refuses too, as the fake shows.
		_, err = h.d.RDS.FailoverDBCluster(context.Background(), &rds.FailoverDBClusterInput{DBClusterIdentifier: aws.String(onlyCluster(t, h.f))})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidDBClusterStateFault" {
			t.Errorf("fake FailoverDBCluster of a single instance: %v", err)
		}
	})
	t.Run("target not a reader", func(t *testing.T) {
		h := newFakeHarness(t)
		h.putDB(t, true, false)
		instances, _ := h.f.ClusterMembers(onlyCluster(t, h.f))
		_, err := h.d.Failover(context.Background(), dbName, instances[0]) // the writer itself
		if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "not a reader") || !strings.Contains(err.Error(), instances[1]) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("declined", func(t *testing.T) {
		h := newFakeHarness(t)
		h.putDB(t, true, false)
		h.answer = errors.New("declined")
		if _, err := h.d.Failover(context.Background(), dbName, ""); err == nil || len(h.f.CallsOf("FailoverDBCluster")) != 0 {
			t.Fatalf("err = %v, failover calls %d", err, len(h.f.CallsOf("FailoverDBCluster")))
		}
	})
	t.Run("no stack", func(t *testing.T) {
		h := newFakeHarness(t)
		if _, err := h.d.Failover(context.Background(), dbName, ""); err == nil || !strings.Contains(err.Error(), "apgstack up --target aws") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestFakeFailoverCtrlCStopsWaitingOnly(t *testing.T) {
	h := newFakeHarness(t)
	h.putDB(t, true, false)
	cluster := onlyCluster(t, h.f)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h.f.OnCall = func(c awsfake.Call) {
		if c.Action == "DescribeDBClusters" && len(h.f.CallsOf("FailoverDBCluster")) > 0 {
			cancel() // the user presses Ctrl-C while RDS fails over
		}
	}
	_, err := h.d.Failover(ctx, dbName, "")
	var fe *FailoverInterruptedError
	if !errors.As(err, &fe) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want a FailoverInterruptedError", err)
	}
	if !strings.Contains(err.Error(), "apgstack status --target aws") || !strings.Contains(err.Error(), "nothing was cancelled") || fe.Cluster != cluster {
		t.Errorf("message %q", err)
	}
	// RDS goes on: the next look shows the new writer.
	instances, _ := h.f.ClusterMembers(cluster)
	for range awsfake.FailoverSteps {
		if _, _, _, err := h.d.readCluster(context.Background(), cluster); err != nil {
			t.Fatal(err)
		}
	}
	if _, w := h.f.ClusterMembers(cluster); w != instances[1] {
		t.Errorf("writer %s after the failover went on, want %s", w, instances[1])
	}
}

func TestFakeRotateSecret(t *testing.T) {
	for _, tc := range []struct {
		name       string
		role       string
		appSecrets bool
		want       []string // logical ids of the secrets rotated, in order
	}{
		{"master", "master", true, []string{"AuroraMasterSecret"}},
		{"read-only role", "ro", true, []string{"AppReadOnlySecret"}},
		{"all", "all", true, []string{"AuroraMasterSecret", "AppOwnerSecret", "AppReadWriteSecret", "AppReadOnlySecret"}},
		{"all without bootstrap", "all", false, []string{"AuroraMasterSecret"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHarness(t)
			st := h.putDB(t, false, tc.appSecrets)
			res, err := h.d.RotateSecret(context.Background(), dbName, tc.role)
			if err != nil {
				t.Fatalf("rotate: %v\n%s", err, h.log)
			}
			rot := h.f.Rotations()
			if len(res) != len(tc.want) || len(rot) != len(tc.want) {
				t.Fatalf("result %+v, fake rotations %+v", res, rot)
			}
			for i, l := range tc.want {
				if !strings.Contains(res[i].SecretArn, "-"+l+"-") || rot[i].SecretID != res[i].SecretArn || !rot[i].RotateImmediately {
					t.Errorf("rotation %d: %+v / %+v, want secret %s", i, res[i], rot[i], l)
				}
				if res[i].VersionID != rot[i].VersionID || !strings.Contains(res[i].Watch, "aws secretsmanager describe-secret --secret-id "+res[i].SecretArn) {
					t.Errorf("rotation %d: %+v", i, res[i])
				}
			}
			if tc.role == "master" && res[0].SecretArn != st.Outputs["SecretArn"] {
				t.Errorf("master secret %s, output %s", res[0].SecretArn, st.Outputs["SecretArn"])
			}
			// No secret value is read, let alone shown.
			if n := len(h.f.CallsOf("GetSecretValue")); n != 0 || strings.Contains(h.log.String(), "fake-generated-password") {
				t.Errorf("GetSecretValue called %d times; log:\n%s", n, h.log)
			}
		})
	}
}

func TestFakeRotateSecretRefusals(t *testing.T) {
	h := newFakeHarness(t)
	h.putDB(t, false, false)
	if _, err := h.d.RotateSecret(context.Background(), dbName, "admin"); !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), `"admin"`) {
		t.Errorf("unknown role: %v", err)
	}
	if _, err := h.d.RotateSecret(context.Background(), dbName, "owner"); err == nil || !strings.Contains(err.Error(), "bootstrap") {
		t.Errorf("owner without bootstrap: %v", err)
	}
	// Secrets Manager refuses a secret it does not know, as the fake shows.
	_, err := h.d.SecretsManager.RotateSecret(context.Background(), &secretsmanager.RotateSecretInput{SecretId: aws.String("arn:aws:secretsmanager:eu-west-1:123456789012:secret:nope")})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ResourceNotFoundException" {
		t.Errorf("fake RotateSecret of an unknown secret: %v", err)
	}
	if n := len(h.f.Rotations()); n != 0 {
		t.Errorf("%d rotations asked", n)
	}
}
