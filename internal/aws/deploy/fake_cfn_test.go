package deploy

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apgstack/apgstack/cft"
	"github.com/apgstack/apgstack/internal/aws/stacks"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
)

// The fake follows CloudFormation where these tests rely on it (issue 18, #15).

// TestFakeDeleteOfImportedExportFails: CloudFormation accepts DeleteStack on a stack whose
// export another stack imports, and the deletion ends in DELETE_FAILED naming the importer,
// with nothing deleted.
func TestFakeDeleteOfImportedExportFails(t *testing.T) {
	h := newFakeHarness(t)
	h.mustUp(t, testStacks(false)[:2])
	net, _ := h.f.Stack(netName)
	if _, err := h.d.CFN.DeleteStack(context.Background(), &cloudformation.DeleteStackInput{StackName: aws.String(netName)}); err != nil {
		t.Fatalf("DeleteStack was refused: %v", err)
	}
	err := h.d.deleteAndWait(context.Background(), netName, net.ID, "")
	if err == nil {
		t.Fatal("the deletion of an imported export succeeded")
	}
	st, _ := h.f.Stack(netName)
	if st.Status != "DELETE_FAILED" || len(st.Resources) != len(net.Resources) {
		t.Errorf("status %s, resources %v (had %v)", st.Status, st.Resources, net.Resources)
	}
	status, _ := h.d.Status(context.Background(), []StackRef{{stacks.Network, netName}})
	if len(status) != 1 || !strings.Contains(status[0].Reason, "in use by "+bastName) {
		t.Errorf("status %+v, want the reason naming %s", status, bastName)
	}
}

// TestFakeParallelProgress: independent resources are created at the same time; a resource
// starts once what it refers to (or DependsOn) is complete.
func TestFakeParallelProgress(t *testing.T) {
	h := newFakeHarness(t)
	tpl := cft.New("parallel (test)")
	for _, n := range []string{"A", "B", "C"} {
		tpl.AddResource(n, "AWS::SNS::Topic", map[string]any{})
	}
	tpl.AddResource("D", "AWS::SNS::TopicPolicy", map[string]any{"Topics": []any{cft.Ref("A"), cft.Ref("B")}, "PolicyDocument": map[string]any{}})
	tpl.AddResource("E", "AWS::SNS::Topic", map[string]any{}).DependsOn = []string{"D"}
	if _, err := h.up(t, []*stacks.Stack{{Kind: stacks.Network, Name: netName, Template: tpl}}, UpOptions{}); err != nil {
		t.Fatal(err)
	}
	events, err := h.d.allEvents(context.Background(), netName)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, e := range events {
		if e.LogicalID != netName {
			order = append(order, e.LogicalID+":"+e.Status)
		}
	}
	at := func(s string) int { return slices.Index(order, s) }
	lastStart := max(at("A:CREATE_IN_PROGRESS"), at("B:CREATE_IN_PROGRESS"), at("C:CREATE_IN_PROGRESS"))
	firstDone := min(at("A:CREATE_COMPLETE"), at("B:CREATE_COMPLETE"), at("C:CREATE_COMPLETE"))
	if lastStart < 0 || lastStart > firstDone {
		t.Errorf("A, B and C did not progress in parallel: %v", order)
	}
	if at("D:CREATE_IN_PROGRESS") < max(at("A:CREATE_COMPLETE"), at("B:CREATE_COMPLETE")) || at("E:CREATE_IN_PROGRESS") < at("D:CREATE_COMPLETE") {
		t.Errorf("dependencies not respected: %v", order)
	}
}

// TestFakeEvaluatesFnIf: outputs under Fn::If take the branch the condition chooses.
func TestFakeEvaluatesFnIf(t *testing.T) {
	for _, tc := range []struct{ value, want string }{{"", "none"}, {"203.0.113.0/24", "203.0.113.0/24"}} {
		h := newFakeHarness(t)
		tpl := cft.New("if (test)")
		tpl.AddParameter(&cft.Parameter{Name: "Cidr", Type: "String", Default: ""})
		tpl.AddCondition("HasCidr", cft.Not(cft.Equals(cft.Ref("Cidr"), "")))
		tpl.AddResource("Topic", "AWS::SNS::Topic", map[string]any{})
		tpl.AddOutput(&cft.Output{Name: "Cidr", Value: cft.If("HasCidr", cft.Ref("Cidr"), "none")})
		st := &stacks.Stack{Kind: stacks.Network, Name: netName, Template: tpl, Parameters: []stacks.Param{{ParameterKey: "Cidr", ParameterValue: tc.value}}}
		if _, err := h.up(t, []*stacks.Stack{st}, UpOptions{}); err != nil {
			t.Fatal(err)
		}
		if got, _ := h.f.Stack(netName); got.Outputs["Cidr"] != tc.want {
			t.Errorf("Cidr %q: output %q, want %q", tc.value, got.Outputs["Cidr"], tc.want)
		}
	}
}

// TestFakeRealChangeBesideRoutineOnesIsAsked: a change the configuration made, among the
// transform's routine ones, is not routine: up asks before applying the change set.
func TestFakeRealChangeBesideRoutineOnesIsAsked(t *testing.T) {
	h := newFakeHarness(t)
	h.mustUp(t, testStacks(false))
	h.questions = nil
	list := testStacks(false)
	list[2] = withParam(list[2], "DeletionProtection", "true")
	res := h.mustUp(t, list)
	if got := actionsOf(res); !equal(got, []string{"apg-net:unchanged", "apg-bastion:unchanged", "apg-db:updated"}) {
		t.Errorf("actions = %v", got)
	}
	if Routine(res.Stacks[2].Changes) || len(h.questions) != 1 || !strings.Contains(h.questions[0], "Update stack apg-db") {
		t.Errorf("changes %+v, questions %q: want the update asked", res.Stacks[2].Changes, h.questions)
	}
}

// TestFakeDownWaitsForLambdaInterfaces: the network stack's subnet still holds network
// interfaces of the deleted Lambdas (DependencyViolation, on the fake); down says so, deletes
// again until they are released, and gives up with what remains and how to find it.
func TestFakeDownWaitsForLambdaInterfaces(t *testing.T) {
	refs := []StackRef{{stacks.Database, dbName}, {stacks.Bastion, bastName}, {stacks.Network, netName}}
	for _, tc := range []struct {
		name            string
		failures, tries int
		ok              bool
	}{
		{"released after two tries", 2, 4, true},
		{"never released", 9, 3, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHarness(t)
			h.mustUp(t, testStacks(false))
			h.d.ENIRetryWait, h.d.ENIRetries = time.Millisecond, tc.tries
			h.f.FailDelete(netName, "SubnetAPrivate", tc.failures)
			h.log.Reset()
			res, err := h.d.Down(context.Background(), refs, DownOptions{})
			if tc.ok {
				if err != nil || !slices.Contains(res.Deleted, netName) {
					t.Fatalf("down: %v %+v\n%s", err, res, h.log)
				}
				if n := len(h.f.CallsOf("DeleteStack")); n != 3+tc.failures {
					t.Errorf("DeleteStack calls %d, want %d", n, 3+tc.failures)
				}
				if !strings.Contains(h.log.String(), "network interfaces of the deleted Lambdas remain") {
					t.Errorf("log does not say what down waits for:\n%s", h.log)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "still holds network interfaces") || !strings.Contains(err.Error(), "aws ec2 describe-network-interfaces") {
				t.Errorf("err = %v", err)
			}
			if st, _ := h.f.Stack(netName); st.Status != "DELETE_FAILED" {
				t.Errorf("network stack %s", st.Status)
			}
		})
	}
}
