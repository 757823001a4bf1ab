package endpoint

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// TestPause holds a connection made during a pause and hands it to the backend named at resume;
// connections to the old backend are closed, and a pause that outlasts its bound refuses.
func TestPause(t *testing.T) {
	a, b := backend(t, "a"), backend(t, "b")
	p, err := Listen("writer", "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.SetBackends([]string{a})
	old, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	oldR := bufio.NewReader(old)
	if got, _ := ask(t, old, oldR, "1"); got != "a:1" {
		t.Fatalf("got %q, want a:1", got)
	}

	p.Pause(time.Minute)
	if !p.Paused() {
		t.Fatal("not paused")
	}
	if n := p.CloseConnectionsTo(a); n != 1 {
		t.Errorf("closed %d connections to a, want 1", n)
	}
	if got, err := ask(t, old, oldR, "2"); err == nil {
		t.Errorf("the fenced connection still answered %q", got)
	}
	// The closed connection's relay ends on its own goroutine.
	for i := 0; p.Connections()[a] > 0; i++ {
		if i == 1000 {
			t.Fatal("the fenced connection is still counted")
		}
		time.Sleep(time.Millisecond)
	}
	waiting, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer waiting.Close()
	answer := make(chan string, 1)
	go func() {
		got, _ := ask(t, waiting, bufio.NewReader(waiting), "3")
		answer <- got
	}()
	// The held connection reaches no backend while paused: nothing is relayed anywhere.
	if n := len(p.Connections()); n != 0 {
		t.Errorf("%d backends have connections during the pause, want 0", n)
	}
	p.SetBackends([]string{b})
	p.Resume()
	if got := <-answer; got != "b:3" {
		t.Errorf("connection held over the pause got %q, want b:3", got)
	}

	// A pause bound that passes refuses the waiting connection.
	p.Pause(100 * time.Millisecond)
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := ask(t, c, bufio.NewReader(c), "4"); err == nil {
		t.Errorf("answer %q after the pause's bound, want refused", got)
	}
	p.Resume()
}
