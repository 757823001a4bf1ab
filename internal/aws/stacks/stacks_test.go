package stacks

import (
	"testing"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/bestpractice"
)

// Every stack carries the mandatory tags as stack-level tags, which CloudFormation propagates to
// every resource that takes tags.
func TestEveryStackCarriesTheMandatoryTags(t *testing.T) {
	cfg := apgstack.Default()
	list, err := All(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 {
		t.Fatalf("%d stacks, want network, bastion and database", len(list))
	}
	for _, s := range list {
		got := map[string]string{}
		for _, tag := range s.Tags {
			got[tag.Key] = tag.Value
		}
		for _, k := range bestpractice.MandatoryTags {
			if got[k] == "" {
				t.Errorf("%s stack: tag %s missing", s.Kind, k)
			}
		}
		if got["EnvironmentStage"] != cfg.Environment.Stage {
			t.Errorf("%s stack: EnvironmentStage tag %q", s.Kind, got["EnvironmentStage"])
		}
	}
}
