package supervisor

import (
	"context"
	"strings"
	"testing"
)

// TestCrashAtNamesTheSteps refuses a crash point that names no step, saying which are allowed,
// before anything is written to the state directory.
func TestCrashAtNamesTheSteps(t *testing.T) {
	dir := t.TempDir() + "/state"
	err := Run(context.Background(), Options{StateDir: dir, CrashAt: "after-lunch"}, nil)
	if err == nil || !strings.Contains(err.Error(), `"after-lunch"`) || !strings.Contains(err.Error(), CrashAfterPromote) {
		t.Fatalf("Run with an unknown crash point: %v", err)
	}
	for _, at := range CrashPoints {
		if err := checkCrashAt(at); err != nil {
			t.Errorf("%s: %v", at, err)
		}
	}
}
