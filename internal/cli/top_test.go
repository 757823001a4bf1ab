package cli

import (
	"encoding/json"
	"io"
	"os"
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
	// pre-prod: a writer and a reader to switch over to.
	c.sets = append(c.sets, "--set", "environment.stage=pre-prod")
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
			if !strings.Contains(frame, e.Address) {
				missing = append(missing, e.Name+" endpoint "+e.Address)
			}
			for _, b := range e.Backends {
				if !strings.Contains(frame, b) {
					missing = append(missing, e.Name+" endpoint backend "+b)
				}
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

	t.Run("follow", func(t *testing.T) {
		cmd := c.command("top", "--follow", "--interval", "200ms")
		var out lockedBuffer
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for strings.Count(out.String(), "\n") < 3 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		_ = cmd.Process.Signal(os.Interrupt)
		err := cmd.Wait()
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) < 3 {
			t.Fatalf("top --follow: %d lines in 20 s (exit %v):\n%s", len(lines), err, out.String())
		}
		for _, l := range lines {
			if !strings.Contains(l, " ready ") || !strings.Contains(l, "=writer/running") || !strings.Contains(l, "writer->") {
				t.Errorf("line %q lacks the phase, the writer or the writer endpoint", l)
			}
		}
		if err != nil {
			t.Errorf("top --follow after an interrupt: %v", err)
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
		waitFor := func(what string, ok func(string) bool) {
			t.Helper()
			deadline := time.Now().Add(60 * time.Second)
			for !ok(out.String()) {
				if time.Now().After(deadline) {
					_ = cmd.Process.Kill()
					t.Fatalf("no %s after 60 s:\n%q", what, out.String())
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		key := func(k string) {
			t.Helper()
			if _, err := tty.Write([]byte(k)); err != nil {
				t.Fatal(err)
			}
			// Keys typed at once reach bubbletea as one multi-rune key: one at a time.
			time.Sleep(300 * time.Millisecond)
		}
		// p: psql on the selected instance (the writer, first), the view suspended meanwhile.
		key("p")
		waitFor("psql prompt", func(s string) bool { return strings.Contains(s, "=>") || strings.Contains(s, "=#") })
		key("select upper('psql' || '-ran');\n")
		waitFor("psql's answer", func(s string) bool { return strings.Contains(s, "PSQL-RAN") })
		key("\\q\n")
		waitFor("the view back after psql", func(s string) bool { return strings.Contains(s, "ended") })
		// j selects the reader, s asks, y confirms: the switchover happens.
		oldWriter, reader := st.Instances[0].Name, ""
		for _, in := range st.Instances {
			if in.Role == api.RoleReader {
				reader = in.Name
			}
			if in.Role == api.RoleWriter {
				oldWriter = in.Name
			}
		}
		key("j")
		key("s")
		waitFor("the confirmation", func(s string) bool { return strings.Contains(s, "switch over to "+reader+"?") })
		key("y")
		waitFor("the switchover's outcome", func(s string) bool { return strings.Contains(s, reader+" is the writer now (was "+oldWriter+")") })
		key("q")
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
		stdout, _ := c.ok("status", "-o", "json")
		var after api.Status
		if err := json.Unmarshal([]byte(stdout), &after); err != nil {
			t.Fatal(err)
		}
		for _, in := range after.Instances {
			if in.Role == api.RoleWriter && in.Name != reader {
				t.Errorf("after the switchover from top, the writer is %s, want %s", in.Name, reader)
			}
		}
		// Without a terminal, the writer endpoint's row now names the new writer.
		frame, _ := c.ok("top")
		moved := false
		for _, line := range strings.Split(frame, "\n") {
			if f := strings.Fields(line); len(f) > 2 && f[0] == "writer" && strings.HasPrefix(f[1], "127.0.0.1:") && f[2] == reader {
				moved = true
			}
		}
		if !moved {
			t.Errorf("after the switchover the writer endpoint does not point to %s:\n%s", reader, frame)
		}
	})

	t.Run("supervisor gone", func(t *testing.T) {
		c.ok("down", "--skip-final-snapshot", "--yes")
		code, _, stderr := c.try("top")
		if code == 0 || !strings.Contains(stderr, "not running") {
			t.Errorf("top on a stopped twin: exit %d, stderr %q; want an error saying it is not running", code, stderr)
		}
	})
}
