package bestpractice

import (
	"os"
	"strings"
	"testing"
)

// The README's per-stage table is StageTable's output.
func TestREADMEStageTable(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), StageTable()) {
		t.Errorf("README.md lacks the per-stage table; paste:\n%s", StageTable())
	}
}
