package stacks

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/cft"
)

// TestSuppressionsRenderForEveryTool: each deliberate choice names an existing resource, gives a
// reason, and reaches each scanner in the form it reads, from the one entry.
func TestSuppressionsRenderForEveryTool(t *testing.T) {
	cfg := apgstack.Default()
	cfg.Database.BootstrapS3Bucket, cfg.Database.BootstrapS3Key = "bucket", "bootstrap.zip"
	built := map[string]*Stack{}
	for _, kind := range Order {
		s, err := Build(cfg, kind)
		if err != nil {
			t.Fatal(err)
		}
		built[kind] = s
	}
	for _, s := range suppressions {
		r := built[s.Stack].Template.Resource(s.Resource)
		if r == nil {
			t.Errorf("%s %s: no such resource", s.Stack, s.Resource)
			continue
		}
		if len(strings.TrimSpace(s.Reason)) < 20 {
			t.Errorf("%s: the reason %q says too little", s.Resource, s.Reason)
		}
		check := func(tool, listKey, reasonKey string, ids []string) {
			if len(ids) == 0 {
				return
			}
			md, _ := r.Metadata[tool].(map[string]any)
			list, _ := md[listKey].([]any)
			if len(list) != len(ids) {
				t.Errorf("%s %s: %v, want %v", s.Resource, tool, md, ids)
				return
			}
			for i, e := range list {
				m := e.(map[string]any)
				if m["id"] != ids[i] || m[reasonKey] != s.Reason {
					t.Errorf("%s %s[%d] = %v", s.Resource, tool, i, m)
				}
			}
		}
		check("cdk_nag", "rules_to_suppress", "reason", s.CdkNag)
		check("cfn_nag", "rules_to_suppress", "reason", s.CfnNag)
		check("checkov", "skip", "comment", s.Checkov)
		if len(s.CfnLint) > 0 {
			got := r.Metadata["cfn-lint"].(map[string]any)["config"].(map[string]any)["ignore_checks"]
			if !reflect.DeepEqual(got, anyList(s.CfnLint)) {
				t.Errorf("%s cfn-lint %v", s.Resource, got)
			}
		}
	}
	// The deliberate choices the issue names are carried.
	for _, want := range []struct{ stack, resource, id string }{
		{Bastion, bastionRole, "AwsSolutions-IAM4"},
		{Database, dbMonitoringRole, "AwsSolutions-IAM4"},
	} {
		md, _ := built[want.stack].Template.Resource(want.resource).Metadata["cdk_nag"].(map[string]any)
		if md == nil || !strings.Contains(fmt.Sprint(md), want.id) {
			t.Errorf("%s: no cdk_nag suppression of %s: %v", want.resource, want.id, md)
		}
	}
}

// TestScannerFindingsFixed: what the scanners rightly flag is fixed — the bootstrap Lambda has
// reserved concurrency and a dead-letter target, the flow log group a customer-managed key.
func TestScannerFindingsFixed(t *testing.T) {
	cfg := apgstack.Default()
	db := buildStack(t, cfg, Database).Template.Resource(dbBootstrapFn).Properties
	if db["ReservedConcurrentExecutions"] != bootstrapConcurrency || !reflect.DeepEqual(db["DeadLetterConfig"], map[string]any{"TargetArn": cft.Ref(dbTopic)}) {
		t.Errorf("bootstrap function: concurrency %v, dead letters %v", db["ReservedConcurrentExecutions"], db["DeadLetterConfig"])
	}
	net := buildStack(t, cfg, Network).Template
	if k := net.Resource("FlowLogsLogGroup").Properties["KmsKeyId"]; !reflect.DeepEqual(k, cft.GetAtt(flowLogsKey, "Arn")) {
		t.Errorf("flow log group key %v", k)
	}
	if net.Resource(flowLogsKey).Properties["EnableKeyRotation"] != true {
		t.Error("the flow logs key does not rotate")
	}
}
