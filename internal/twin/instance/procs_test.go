package instance

import (
	"os"
	"os/exec"
	"slices"
	"testing"
)

// Processes finds a process by its working directory, whatever its parent.
func TestProcessesByWorkingDirectory(t *testing.T) {
	dir := t.TempDir()
	i := &Instance{Dir: dir}
	if err := os.MkdirAll(i.DataDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "30")
	cmd.Dir = i.DataDir()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if got := i.Processes(); !slices.Contains(got, cmd.Process.Pid) {
		t.Fatalf("Processes() = %v, want it to hold %d", got, cmd.Process.Pid)
	}
	if got := (&Instance{Dir: t.TempDir()}).Processes(); len(got) != 0 {
		t.Fatalf("an instance nothing runs in: %v", got)
	}
}
