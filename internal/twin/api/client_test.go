package api

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

type backend struct{ shutdowns int }

func (b *backend) Status(context.Context) Status {
	return Status{Name: "db", Phase: PhaseReady}
}
func (b *backend) Events(context.Context) ([]Event, error) {
	return []Event{{Category: "notification", Message: "hello"}}, nil
}
func (b *backend) Shutdown(context.Context) error { b.shutdowns++; return nil }

func TestRoundTripOverUnixSocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "run", "sock")
	if _, err := NewClient(sock).Status(context.Background()); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("status without supervisor: %v, want ErrNotRunning", err)
	}
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{sock: 0o600, filepath.Dir(sock): 0o700} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
	if _, err := Listen(sock); err == nil {
		t.Error("a second supervisor could listen on the same socket")
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &backend{}
	done := make(chan error)
	go func() { done <- Serve(ctx, ln, b) }()
	c := NewClient(sock)
	st, err := c.Status(ctx)
	if err != nil || st.Name != "db" || st.Phase != PhaseReady {
		t.Fatalf("status = %+v, %v", st, err)
	}
	ev, err := c.Events(ctx)
	if err != nil || len(ev) != 1 || ev[0].Message != "hello" {
		t.Fatalf("events = %+v, %v", ev, err)
	}
	if err := c.Shutdown(ctx); err != nil || b.shutdowns != 1 {
		t.Fatalf("shutdown: %v (%d)", err, b.shutdowns)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
