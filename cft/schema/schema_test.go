package schema

import (
	"errors"
	"strings"
	"testing"
)

func TestEveryEmbeddedSchemaParses(t *testing.T) {
	entries := Entries()
	if len(entries) < 1000 {
		t.Fatalf("only %d schemas embedded", len(entries))
	}
	for _, e := range entries {
		s, err := byEntry(e)
		if err != nil {
			t.Fatalf("%s: %v", e, err)
		}
		if entryName(s.TypeName) != e {
			t.Errorf("%s holds %s, which would be looked up as %s", e, s.TypeName, entryName(s.TypeName))
		}
		// Every local reference must lead somewhere, or validation would silently skip it.
		var walk func(path string, n *Node)
		seen := map[*Node]bool{}
		walk = func(path string, n *Node) {
			if n == nil || seen[n] {
				return
			}
			seen[n] = true
			if n.Ref != "" && strings.HasPrefix(n.Ref, "#/") {
				r := s.Resolve(n)
				if r == nil {
					t.Errorf("%s: %s: $ref %s leads nowhere", s.TypeName, path, n.Ref)
				}
				walk(path, r)
			}
			for k, c := range n.Properties {
				walk(path+"."+k, c)
			}
			for k, c := range n.PatternProperties {
				walk(path+"["+k+"]", c)
			}
			walk(path+"[]", n.Items)
			for _, list := range [][]*Node{n.OneOf, n.AnyOf, n.AllOf} {
				for _, c := range list {
					walk(path+"|", c)
				}
			}
		}
		// From the properties only: a few schemas carry unused, self-referencing definitions.
		walk("Properties", &s.Node)
	}
}

func TestLookup(t *testing.T) {
	s, err := Lookup("AWS::RDS::DBCluster")
	if err != nil {
		t.Fatal(err)
	}
	if s.Properties["Engine"] == nil || !s.ClosedObject() {
		t.Errorf("DBCluster schema lacks Engine or is open: %+v", s.Node)
	}
	again, _ := Lookup("AWS::RDS::DBCluster")
	if again != s {
		t.Error("schema parsed twice")
	}
	tags := s.Resolve(s.Properties["Tags"].Items)
	if tags == nil || tags.Properties["Key"] == nil {
		t.Errorf("Tags items do not resolve to a Tag definition: %+v", s.Properties["Tags"].Items)
	}
	if ok, prop := s.Taggable(); !ok || prop != "Tags" {
		t.Errorf("Taggable() = %v, %q", ok, prop)
	}
	if !s.ReadOnly("Endpoint") {
		t.Error("Endpoint should be read-only")
	}

	if _, err := Lookup("AWS::RDS::NoSuchThing"); !errors.Is(err, ErrUnknownType) {
		t.Errorf("unknown type: err = %v", err)
	}
	if _, err := Lookup("AWS::Rds::DbCluster"); !errors.Is(err, ErrUnknownType) {
		t.Errorf("wrong case: err = %v", err)
	}
	if got := Suggest("AWS::Rds::DbCluster"); got != "AWS::RDS::DBCluster" {
		t.Errorf("Suggest = %q", got)
	}
	if !Has("AWS::EC2::VPC") || Has("Custom::Thing") {
		t.Error("Has wrong")
	}
	if Version == "" || !strings.HasPrefix(Source(), "github.com/aws-cloudformation/rain v") {
		t.Errorf("Source() = %q", Source())
	}
}

func BenchmarkLookupCold(b *testing.B) {
	for b.Loop() {
		mu.Lock()
		parsed = map[string]*Schema{}
		mu.Unlock()
		for _, typ := range []string{"AWS::EC2::VPC", "AWS::EC2::Subnet", "AWS::RDS::DBCluster", "AWS::RDS::DBInstance", "AWS::EC2::LaunchTemplate"} {
			if _, err := Lookup(typ); err != nil {
				b.Fatal(err)
			}
		}
	}
}
