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

// Fence kills every process working in the data directory, whatever its parent, and checks none
// is left.
func TestFenceKillsEveryProcess(t *testing.T) {
	i := &Instance{Name: "x", Dir: t.TempDir()}
	if err := os.MkdirAll(i.DataDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		cmd := exec.Command("sleep", "30")
		cmd.Dir = i.DataDir()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go cmd.Wait() // reaped at once, as init reaps a reparented backend

	}
	if err := i.Fence(); err != nil {
		t.Fatal(err)
	}
	if left := i.Processes(); len(left) != 0 {
		t.Fatalf("left: %v", left)
	}
}
