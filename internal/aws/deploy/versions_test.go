package deploy

// The live version check against awsfake, the in-process FAKE of RDS: the catalog the fake
// Region offers is changed to take versions and classes away, as a Region behind the
// calendar does.

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/cft"
	"github.com/apgstack/apgstack/internal/aws/stacks"
	"github.com/apgstack/apgstack/internal/testkit/awsfake"
)

func TestFakeLiveVersions(t *testing.T) {
	h := newFakeHarness(t)
	o, err := h.d.LiveVersions(context.Background(), "16.9")
	if err != nil {
		t.Fatal(err)
	}
	if o.Default != "17.7" || !o.Version("17.7").Default {
		t.Errorf("default %q", o.Default)
	}
	v := o.Version("16.9")
	if v == nil || !slices.Contains(v.MinorTargets, "16.11") || !slices.Contains(v.MajorTargets, "17.7") || slices.Contains(v.MinorTargets, "17.7") {
		t.Errorf("16.9 upgrade targets %+v", v)
	}
	var m13 *RegionMajor
	for i := range o.Majors {
		if o.Majors[i].Major == "13" {
			m13 = &o.Majors[i]
		}
	}
	if m13 == nil || m13.EndOfStandardSupport.Format(time.DateOnly) != "2026-02-28" || m13.EndOfExtendedSupport.Format(time.DateOnly) != "2029-02-28" {
		t.Errorf("13's Extended Support status %+v", m13)
	}
	if o.ClassesFor != "16.9" || !slices.Contains(o.Classes, "db.r7g.large") || !slices.Contains(o.Classes, "db.serverless") {
		t.Errorf("classes for %s: %v", o.ClassesFor, o.Classes)
	}
	for _, a := range []string{"DescribeDBEngineVersions", "DescribeDBMajorEngineVersions", "DescribeOrderableDBInstanceOptions"} {
		if len(h.f.CallsOf(a)) == 0 {
			t.Errorf("%s not called", a)
		}
	}
}

func dbWith(version, class string) []*stacks.Stack {
	list := testStacks(false)
	for _, p := range []string{"DBEngineVersion", "DBInstanceClass"} {
		list[2].Template.AddParameter(&cft.Parameter{Name: p, Type: "String"})
	}
	list[2] = withParam(withParam(list[2], "DBEngineVersion", version), "DBInstanceClass", class)
	return list
}

// TestFakeUpRefusesWhatTheRegionDoesNotOffer: up refuses before any change set, naming the
// alternatives.
func TestFakeUpRefusesWhatTheRegionDoesNotOffer(t *testing.T) {
	lagging := func() *awsfake.RDSCatalog {
		c := awsfake.DefaultCatalog()
		c.Versions = slices.DeleteFunc(c.Versions, func(v string) bool { return v == "17.7" || v == "17.6" })
		c.Default = "16.11"
		c.Classes = map[string][]string{"17.5": {"db.r6g.large", "db.r7g.large"}}
		return c
	}
	for _, c := range []struct {
		name, version, class string
		want                 []string // substrings of the refusal; none: allowed
	}{
		{"offered", "17.5", "db.r7g.large", nil},
		{"version the Region lacks", "17.7", "db.r7g.large", []string{"database.engineVersion", `"17.7"`, "17.4, 17.5", "16.11 (the Region's default)"}},
		{"class the Region lacks for the version", "17.5", "db.r8g.large", []string{"database.instanceClass", `"db.r8g.large"`, "db.r6g.large, db.r7g.large"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newFakeHarness(t)
			h.f.Catalog = lagging()
			_, err := h.up(t, dbWith(c.version, c.class), UpOptions{})
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !IsNotOffered(err) {
				t.Fatalf("want a NotOfferedError, got %v", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v lacks %q", err, w)
				}
			}
			if n := len(h.f.CallsOf("CreateChangeSet")); n != 0 {
				t.Errorf("%d change sets created before the refusal", n)
			}
		})
	}
}

// A check that cannot be made (RDS denied) warns and lets CloudFormation decide.
func TestFakeUpWarnsWhenTheCheckCannotBeMade(t *testing.T) {
	h := newFakeHarness(t)
	h.f.Deny = map[string]bool{"rds": true}
	err := h.d.CheckOffered(context.Background(), dbWith("17.7", "db.r7g.large")[2])
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("a check that cannot be made must not refuse: %v", err)
	}
	if !strings.Contains(h.log.String(), "could not check") {
		t.Errorf("no warning: %s", h.log)
	}
}

func TestVersionRows(t *testing.T) {
	now := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	offline := VersionRows(nil, now)
	phase := map[string]string{}
	for _, r := range offline {
		phase[r.Version] = r.Support
		if r.Region != "" {
			t.Errorf("offline row %s has a Region column", r.Version)
		}
	}
	for v, want := range map[string]string{"13.23": "extended", "14.20": "ending", "17.7": "standard"} {
		if phase[v] != want {
			t.Errorf("%s: %s, want %s", v, phase[v], want)
		}
	}
	o := &Offer{Default: "17.7", Versions: []RegionVersion{{Version: "17.7", Major: "17", Default: true}, {Version: "18.1", Major: "18"}}}
	live := VersionRows(o, now)
	last := live[len(live)-1]
	if last.Version != "18.1" || last.Region != "offered" || !strings.Contains(last.Support, "not in apgstack's calendar") {
		t.Errorf("a version the calendar lacks must show: %+v", last)
	}
	for _, r := range live {
		if r.Version == "17.7" && r.Region != "default" || r.Version == "16.11" && r.Region != "not offered" {
			t.Errorf("%+v", r)
		}
	}
}

// The copy Region's vault stack deploys like any other stack (the CLI runs it with a Deployer
// of database.backupCopyRegion before the database stack).
func TestFakeUpBackupCopyVault(t *testing.T) {
	h := newFakeHarness(t)
	cfg := apgstack.Default()
	cfg.Environment.Stage = "prod"
	cfg.Database.BackupCopyRegion = "eu-central-1"
	cfg.Database.BackupCopyKmsKeyArn = "arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	st := stacks.BackupCopyVault(cfg)
	if _, err := h.up(t, []*stacks.Stack{st}, UpOptions{}); err != nil {
		t.Fatalf("%v\n%s", err, h.log)
	}
	s, ok := h.f.Stack(st.Name)
	if !ok || s.Status != "CREATE_COMPLETE" || s.Outputs["CopyVaultArn"] == "" {
		t.Errorf("copy vault stack %+v", s)
	}
}
