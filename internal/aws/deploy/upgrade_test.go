package deploy

// Upgrades against awsfake, the in-process FAKE of RDS, whose Blue/Green deployments go through
// RDS's statuses (PROVISIONING, AVAILABLE, SWITCHOVER_IN_PROGRESS, SWITCHOVER_COMPLETED), each
// transitional one lasting a few polls.

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/cft"
)

func TestPlanUpgrade(t *testing.T) {
	offer := &Offer{Region: "eu-west-1", Versions: []RegionVersion{
		{Version: "16.9", Major: "16", MinorTargets: []string{"16.10", "16.11"}, MajorTargets: []string{"17.4", "17.7"}},
	}}
	for _, c := range []struct {
		from, to string
		o        *Offer
		how      string
		err      string
	}{
		{"16.9", "16.11", offer, "stack", ""},
		{"16.9", "17.7", offer, "blue-green", ""},
		{"16.9", "17.6", offer, "", "not a valid upgrade target of 16.9 in eu-west-1: the Region offers 16.10, 16.11, 17.4, 17.7"},
		{"16.9", "16.9", offer, "", "the version the cluster runs"},
		{"17.7", "16.11", nil, "", "Aurora does not downgrade"},
		{"16.9", "18.0", nil, "", "is not allowed: one of 13.20"},
		{"15.15", "17.7", nil, "blue-green", ""},
	} {
		p, err := PlanUpgrade(c.o, c.from, c.to)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, ErrBadInput) {
				t.Errorf("%s -> %s: want %q (bad input), got %v", c.from, c.to, c.err, err)
			}
			continue
		}
		if err != nil || p.How != c.how || p.Family != "aurora-postgresql"+strings.SplitN(c.to, ".", 2)[0] {
			t.Errorf("%s -> %s: %+v, %v", c.from, c.to, p, err)
		}
	}
}

func TestFakeBlueGreenMajorUpgrade(t *testing.T) {
	h := newFakeHarness(t)
	h.f.PutCluster("apg-db-cluster", "16.11", "apg-db-writer", "apg-db-reader")
	res, err := h.d.MajorUpgrade(context.Background(), BlueGreenOptions{Cluster: "apg-db-cluster", To: "17.7", DeleteBlue: true})
	if err != nil {
		t.Fatalf("%v\n%s", err, h.log)
	}
	want := []string{"PROVISIONING", "AVAILABLE", "SWITCHOVER_IN_PROGRESS", "SWITCHOVER_COMPLETED"}
	if !slices.Equal(res.Statuses, want) {
		t.Errorf("statuses %v, want %v", res.Statuses, want)
	}
	if v, _ := h.f.ClusterVersion("apg-db-cluster"); v != "17.7" {
		t.Errorf("the cluster runs %s after the switchover", v)
	}
	if _, exists := h.f.ClusterVersion("apg-db-cluster-old1"); exists || !res.BlueDeleted {
		t.Error("the old cluster was to be deleted")
	}
	if !slices.Contains(h.f.Snapshots(), res.FinalSnapshot) {
		t.Errorf("no final snapshot %s of the old cluster: %v", res.FinalSnapshot, h.f.Snapshots())
	}
	if len(res.Switched) != 3 || !strings.Contains(h.log.String(), "writes paused for at most") {
		t.Errorf("switchover shown %v; log:\n%s", res.Switched, h.log)
	}
	// Parameter groups of the new family, with the best-practice entries, made first.
	pgs := h.f.ParameterGroups()
	if len(pgs) != 2 {
		t.Fatalf("parameter groups %+v", pgs)
	}
	for _, pg := range pgs {
		if pg.Family != "aurora-postgresql17" {
			t.Errorf("%s family %s", pg.Name, pg.Family)
		}
	}
	if pgs[0].Parameters["rds.force_ssl"] != "1" || len(pgs[1].Parameters) != len(bestpractice.InstanceParameters) {
		t.Errorf("parameters: cluster %v, instance %d entries", pgs[0].Parameters, len(pgs[1].Parameters))
	}
	actions := h.f.Actions("rds")
	if slices.Index(actions, "CreateDBClusterParameterGroup") > slices.Index(actions, "CreateBlueGreenDeployment") {
		t.Error("the parameter groups must exist before the green side is created")
	}
	if len(h.questions) != 2 {
		t.Errorf("questions %v: want the switchover and the deletion confirmed", h.questions)
	}
}

// Without an answer within the time-out the switchover does not happen and the way on is said.
func TestFakeBlueGreenConfirmationTimesOut(t *testing.T) {
	h := newFakeHarness(t)
	h.f.PutCluster("apg-db-cluster", "16.11", "apg-db-writer")
	block := make(chan struct{})
	defer close(block)
	h.d.Confirm = func(string) error { <-block; return nil }
	_, err := h.d.MajorUpgrade(context.Background(), BlueGreenOptions{Cluster: "apg-db-cluster", To: "17.7", ConfirmTimeout: 20 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "no answer within") || !strings.Contains(err.Error(), "switchover-blue-green-deployment") {
		t.Fatalf("want a time-out naming the way on, got %v", err)
	}
	if len(h.f.CallsOf("SwitchoverBlueGreenDeployment")) != 0 {
		t.Error("switched over without an answer")
	}
	if v, _ := h.f.ClusterVersion("apg-db-cluster"); v != "16.11" {
		t.Errorf("the blue cluster runs %s", v)
	}
}

// A target the Region does not offer fails at creation, after the parameter groups.
func TestFakeBlueGreenRefusedTarget(t *testing.T) {
	h := newFakeHarness(t)
	h.f.PutCluster("apg-db-cluster", "16.11", "apg-db-writer")
	_, err := h.d.MajorUpgrade(context.Background(), BlueGreenOptions{Cluster: "apg-db-cluster", To: "18.1"})
	if err == nil || !strings.Contains(err.Error(), "Cannot find upgrade target") {
		t.Fatalf("want RDS's refusal, got %v", err)
	}
}

// Upgrade reads the stack's cluster and its version from RDS: a minor version is planned for
// the stack, a major one runs through Blue/Green.
func TestFakeUpgradeThroughTheStack(t *testing.T) {
	h := newFakeHarness(t)
	list := dbWith("16.9", "db.r7g.large")
	tpl := list[2].Template
	tpl.Resource("AuroraDBCluster").Properties["EngineVersion"] = cft.Ref("DBEngineVersion")
	tpl.AddResource("Writer", "AWS::RDS::DBInstance", map[string]any{"DBClusterIdentifier": cft.Ref("AuroraDBCluster")})
	h.mustUp(t, list)

	minor, err := h.d.Upgrade(context.Background(), dbName, "16.11", BlueGreenOptions{})
	if err != nil || minor.Plan.How != "stack" || minor.BlueGreen != nil || len(h.f.CallsOf("CreateBlueGreenDeployment")) != 0 {
		t.Fatalf("minor: %+v, %v", minor, err)
	}
	major, err := h.d.Upgrade(context.Background(), dbName, "17.7", BlueGreenOptions{})
	if err != nil {
		t.Fatalf("major: %v\n%s", err, h.log)
	}
	if major.Plan.How != "blue-green" || major.BlueGreen == nil || major.BlueGreen.Statuses[len(major.BlueGreen.Statuses)-1] != "SWITCHOVER_COMPLETED" {
		t.Errorf("major: %+v", major)
	}
	if _, err := h.d.Upgrade(context.Background(), dbName, "16.11", BlueGreenOptions{}); err == nil || !errors.Is(err, ErrBadInput) {
		t.Errorf("a downgrade from 17.7 must be refused as bad input: %v", err)
	}
}
