package deploy

import (
	"errors"
	"strings"
	"testing"

	"github.com/apgstack/apgstack/cft"
	"github.com/apgstack/apgstack/internal/aws/stacks"
)

// sampleDB is a database stack as the AWS sample made it: its own custom resource type for the
// bootstrap trigger, no log group resources.
func sampleDB(exports bool) *cft.Template {
	t := cft.New("sample database (test)")
	c := map[string]any{"Engine": "aurora-postgresql"}
	if exports {
		c["EnableCloudwatchLogsExports"] = []any{"postgresql"}
	}
	t.AddResource("AuroraDBCluster", "AWS::RDS::DBCluster", c)
	t.AddResource("AuroraDBFirstInstance", "AWS::RDS::DBInstance", map[string]any{"DBClusterIdentifier": cft.Ref("AuroraDBCluster")})
	t.AddResource("DBBootStrapLambdaFnTrigger", "Custom::LambdaTrigger", map[string]any{"ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:sample"})
	return t
}

// apgstackDB is the same stack as apgstack builds it: its custom type, and the exported log's
// group managed by the stack.
func apgstackDB() *cft.Template {
	t := sampleDB(true)
	t.Resource("DBBootStrapLambdaFnTrigger").Type = "Custom::DBBootstrap"
	t.AddResource("AuroraPostgresqlLogGroup", "AWS::Logs::LogGroup", map[string]any{
		"LogGroupName": cft.Sub("/aws/rds/cluster/${AuroraDBCluster}/postgresql")})
	return t
}

// TestFakeUpdateOfSampleStack: a stack created from the sample updates in place — its custom
// resource keeps the type it was created with (the fake, like CloudFormation, refuses a type
// change) — unless RDS already made a log group the template now manages: then up refuses
// before any change set, naming the group and the steps.
func TestFakeUpdateOfSampleStack(t *testing.T) {
	for _, exports := range []bool{false, true} {
		h := newFakeHarness(t)
		body, _ := sampleDB(exports).YAML()
		if err := h.f.PutStack(dbName, "CREATE_COMPLETE", string(body), nil); err != nil {
			t.Fatal(err)
		}
		st := &stacks.Stack{Kind: stacks.Database, Name: dbName, Template: apgstackDB()}
		_, err := h.up(t, []*stacks.Stack{st}, UpOptions{})
		if exports {
			var le *ExistingLogGroupError
			if !errors.As(err, &le) || !strings.Contains(err.Error(), "aws logs delete-log-group --log-group-name /aws/rds/cluster/") ||
				!strings.Contains(err.Error(), "Import resources into stack") || len(h.f.CallsOf("CreateChangeSet")) != 0 {
				t.Errorf("exports on: err = %v, change sets %d", err, len(h.f.CallsOf("CreateChangeSet")))
			}
			continue
		}
		if err != nil {
			t.Fatalf("exports off: %v\n%s", err, h.log)
		}
		got, _ := h.f.Stack(dbName)
		if got.Status != "UPDATE_COMPLETE" || !strings.Contains(got.Template, "Custom::LambdaTrigger") || strings.Contains(got.Template, "Custom::DBBootstrap") {
			t.Errorf("status %s; template keeps the sample's type? %s", got.Status, got.Template)
		}
		if !strings.Contains(h.log.String(), "keeps its type Custom::LambdaTrigger") {
			t.Errorf("log:\n%s", h.log)
		}
		if st.Template.Resource("DBBootStrapLambdaFnTrigger").Type != "Custom::DBBootstrap" {
			t.Error("the caller's template was changed")
		}
	}
}
