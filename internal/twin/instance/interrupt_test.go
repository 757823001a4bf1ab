package instance

import (
	"context"
	"os"
	"testing"
	"time"
)

// An initdb interrupted at any moment leaves no half-made data directory behind to be taken for
// a cluster: the next InitDB makes a whole one.
func TestInterruptedInitDBIsRedone(t *testing.T) {
	c := newCluster(t)
	i := c.instance("instance1")
	for _, after := range []time.Duration{5 * time.Millisecond, 100 * time.Millisecond, 400 * time.Millisecond} {
		ctx, cancel := context.WithTimeout(context.Background(), after)
		err := i.InitDB(ctx)
		cancel()
		if err == nil {
			break // this machine was quicker than the interrupt: nothing half-made to check
		}
		if i.Initialized() {
			t.Fatalf("interrupted after %s, yet the data directory looks initialized", after)
		}
		if _, err := os.Stat(i.DataDir()); !os.IsNotExist(err) {
			t.Fatalf("interrupted after %s: a data directory is left: %v", after, err)
		}
	}
	if !i.Initialized() {
		if err := i.InitDB(context.Background()); err != nil {
			t.Fatalf("initdb after interruptions: %v", err)
		}
	}
	if !i.Initialized() {
		t.Fatal("no cluster after a whole initdb")
	}
	if left := i.Processes(); len(left) != 0 {
		t.Errorf("processes of the interrupted initdb left: %v", left)
	}
}
