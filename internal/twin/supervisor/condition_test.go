package supervisor

import (
	"strings"
	"sync"
	"testing"
)

// TestConditionsOneOwner sends condition changes from many goroutines at once, as the watch, a
// failover and reader restarts do: the loop applies them one at a time, so an exited server is
// marked (and its restart started) exactly once, a failover's condition is never overwritten by
// the watch, and the published snapshot is never written through by readers.
func TestConditionsOneOwner(t *testing.T) {
	s := &Supervisor{conds: newConditions()}

	s.setCondition("instance1", condition{kind: condFailingOver})
	var wg sync.WaitGroup
	marked := make(chan string, 100)
	for range 50 {
		wg.Go(func() {
			for _, name := range s.markExited([]string{"instance1", "instance2"}) {
				marked <- name
			}
		})
		wg.Go(func() { _ = s.conds.snapshot()["instance2"].message() })
	}
	wg.Wait()
	close(marked)
	var got []string
	for name := range marked {
		got = append(got, name)
	}
	if len(got) != 1 || got[0] != "instance2" {
		t.Errorf("marked exited: %v, want instance2 once (instance1 is failing over)", got)
	}
	if c := s.conds.of("instance1"); c.kind != condFailingOver || c.message() != "failing over" {
		t.Errorf("instance1: %+v %q", c, c.message())
	}
	if c := s.conds.of("instance2"); c.kind != condExited {
		t.Errorf("instance2: %+v", c)
	}

	s.setFailed("instance2", "restart failed: no space left")
	if c := s.conds.of("instance2"); c.kind != condFailed || c.message() != "restart failed: no space left" {
		t.Errorf("instance2 after setFailed: %+v", c)
	}
	s.clearCondition("instance2")
	if _, ok := s.conds.snapshot()["instance2"]; ok {
		t.Error("instance2 still has a condition after clearCondition")
	}

	for _, c := range []condition{{kind: condRejoining, detail: "instance1"}, {kind: condRewinding, detail: "instance1"}} {
		if !c.returning() || !strings.Contains(c.message(), "instance1") {
			t.Errorf("%+v: returning %v, %q", c, c.returning(), c.message())
		}
	}

	// After the supervisor ended, changes are dropped rather than block.
	s.conds.close()
	s.setCondition("instance1", condition{})
}
