package supervisor

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/apgstack/apgstack/internal/twin/api"
)

// TestStatusPolledDuringFailovers polls status, metrics and events through the API without
// pause while the twin switches over twice and fails over once after a SIGKILL of its writer.
// Under the race detector (CI runs it so) this guards the race once found: Status read the
// instances map after releasing the lock while a rejoin wrote it, a fatal concurrent map access
// that could crash the daemon mid-failover.
func TestStatusPolledDuringFailovers(t *testing.T) {
	h := upHA(t, "pre-prod")
	c := api.NewClient(Layout{Root: h.dir}.Socket())
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	stop := make(chan struct{})
	var polls atomic.Int64
	var wg sync.WaitGroup
	for _, poll := range []func() error{
		func() error { _, err := c.Status(ctx); return err },
		func() error { _, err := c.Metrics(ctx); return err },
		func() error { _, err := c.Events(ctx); return err },
		func() error { h.sv.Status(ctx); return nil }, // in-process too, as the bench does
	} {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := poll(); err != nil {
					t.Errorf("poll during failovers: %v", err)
					return
				}
				polls.Add(1)
				time.Sleep(time.Millisecond)
			}
		})
	}

	for round := 1; round <= 2; round++ {
		if _, err := c.Failover(ctx, ""); err != nil {
			t.Fatalf("switchover %d: %v", round, err)
		}
		h.waitCluster(t, 2)
	}
	old := h.writer(t)
	if err := syscall.Kill(old.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for h.writer(t).Name == old.Name && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if now := h.writer(t); now.Name == old.Name {
		t.Fatalf("no failover after SIGKILL of %s", old.Name)
	}
	h.waitCluster(t, 2)
	close(stop)
	wg.Wait()
	if n := polls.Load(); n < 100 {
		t.Errorf("only %d polls answered during the failovers", n)
	}
}
