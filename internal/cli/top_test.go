package cli

import (
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/apgstack/apgstack/internal/twin/api"
)

// TestBinaryTop runs the built binary's top against a real twin: without a terminal it prints
// one plain frame with the instances and the endpoints and where they point; under a
// pseudo-terminal it draws the live view and q quits it with exit 0.
func TestBinaryTop(t *testing.T) {
	c := buildCLI(t)
	c.ok("init")
	c.downAt(filepath.Join(c.work, ".apgstack"))
	c.ok("up")
	stdout, _ := c.ok("status", "-o", "json")
	var st api.Status
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, stdout)
	}
	if len(st.Instances) == 0 || len(st.Endpoints) == 0 {
		t.Fatalf("the twin shows no instance or no endpoint: %+v", st)
	}
	want := func(frame string) []string {
		var missing []string
		for _, in := range st.Instances {
			if !strings.Contains(frame, in.Name) {
				missing = append(missing, in.Name)
			}
		}
		for _, e := range st.Endpoints {
			if !strings.Contains(frame, e.Address) || !strings.Contains(frame, strings.Join(e.Backends, ", ")) {
				missing = append(missing, e.Name+" endpoint "+e.Address+" -> "+strings.Join(e.Backends, ", "))
			}
		}
		return missing
	}

	t.Run("plain frame", func(t *testing.T) {
		frame, _ := c.ok("top")
		for _, s := range []string{"INSTANCE", "ENDPOINT", "ALARMS", "LAST EVENTS", st.Name} {
			if !strings.Contains(frame, s) {
				t.Errorf("the frame lacks %q:\n%s", s, frame)
			}
		}
		if m := want(frame); len(m) > 0 {
			t.Errorf("the frame lacks %v:\n%s", m, frame)
		}
		if strings.Contains(frame, "\x1b[") {
			t.Errorf("escape sequences in the plain frame:\n%q", frame)
		}
	})

	t.Run("pseudo-terminal", func(t *testing.T) {
		cmd := c.command("top")
		cmd.Env = append(cmd.Env, "TERM=xterm-256color")
		tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 50, Cols: 160})
		if err != nil {
			t.Fatal(err)
		}
		defer tty.Close()
		var out lockedBuffer
		go func() { _, _ = io.Copy(&out, tty) }()
		deadline := time.Now().Add(30 * time.Second)
		for len(want(out.String())) > 0 || !strings.Contains(out.String(), "q quit") {
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				t.Fatalf("no frame with %v after 30 s:\n%q", want(out.String()), out.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
		if _, err := tty.Write([]byte("q")); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("top after q: %v\n%q", err, out.String())
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("top did not exit after q:\n%q", out.String())
		}
	})
}
