package deploy

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/apgstack/apgstack/cft"
	"github.com/apgstack/apgstack/internal/aws/stacks"
	"github.com/apgstack/apgstack/internal/progress"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
)

// TestLiveAWS runs against a real account, only when APGSTACK_LIVE_AWS=1 (credentials and
// Region from the standard chain, e.g. AWS_PROFILE and AWS_REGION). It creates a stack holding
// one free SSM parameter, re-runs it (no changes), reads its status and deletes it.
func TestLiveAWS(t *testing.T) {
	if os.Getenv("APGSTACK_LIVE_AWS") != "1" {
		t.Skip("live AWS test: set APGSTACK_LIVE_AWS=1 with credentials and a Region to run it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cfg, err := Load(ctx, Options{Profile: os.Getenv("APGSTACK_LIVE_PROFILE")})
	if err != nil {
		t.Fatal(err)
	}
	d := New(cfg)
	d.View = progress.New(os.Stderr, progress.Options{})
	d.Out = os.Stderr
	id, err := d.Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("account %s as %s in %s", id.Account, id.Arn, d.Region)
	for _, w := range d.Preflight(ctx) {
		t.Logf("preflight: %s", w)
	}
	name := fmt.Sprintf("apgstack-live-test-%d", time.Now().Unix())
	t.Cleanup(func() {
		_, _ = d.CFN.DeleteStack(context.Background(), &cloudformation.DeleteStackInput{StackName: aws.String(name)})
	})
	tpl := cft.New("apgstack live test: one SSM parameter, free")
	tpl.AddParameter(&cft.Parameter{Name: "Value", Type: "String"})
	tpl.AddResource("Param", "AWS::SSM::Parameter", map[string]any{"Type": "String", "Value": cft.Ref("Value")})
	tpl.AddOutput(&cft.Output{Name: "ParamName", Value: cft.Ref("Param")})
	st := &stacks.Stack{Kind: "live", Name: name, Template: tpl, Parameters: []stacks.Param{{ParameterKey: "Value", ParameterValue: "one"}}}
	res, err := d.Up(ctx, []*stacks.Stack{st}, UpOptions{})
	if err != nil || res.Stacks[0].Action != "created" {
		t.Fatalf("up: %v %+v", err, res)
	}
	res, err = d.Up(ctx, []*stacks.Stack{st}, UpOptions{})
	if err != nil || res.Stacks[0].Action != "unchanged" {
		t.Fatalf("re-run: %v %+v", err, res)
	}
	status, err := d.Status(ctx, []StackRef{{Kind: "live", Name: name}})
	if err != nil || status[0].Status != "CREATE_COMPLETE" || len(status[0].Outputs) != 1 {
		t.Fatalf("status: %v %+v", err, status)
	}
	if _, err := d.Down(ctx, []StackRef{{Kind: "live", Name: name}}, DownOptions{}); err != nil {
		t.Fatal(err)
	}
}
