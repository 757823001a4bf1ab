package cli

import (
	"context"
	"testing"
	"time"

	"github.com/apgstack/apgstack/internal/twin"
	"github.com/apgstack/apgstack/internal/twin/api"
)

// supervise runs a supervisor with opts in the test's own process, as the command tests' twin,
// and returns once it serves; it is stopped, and waited for, when the test ends. The context is
// the supervisor's, live until then.
func supervise(t *testing.T, opts twin.Options) context.Context {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var runErr error
	done, ready := make(chan struct{}), make(chan struct{})
	go func() {
		runErr = twin.Supervise(ctx, opts, nil, func(api.Status) { close(ready) })
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-ready:
	case <-done:
		t.Fatalf("supervisor: %v", runErr)
	case <-time.After(2 * time.Minute):
		t.Fatal("supervisor not ready")
	}
	return ctx
}
