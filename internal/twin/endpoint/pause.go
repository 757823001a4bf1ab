package endpoint

import (
	"net"
	"time"
)

// pauseState holds new connections back during a failover or switchover.
type pauseState struct {
	on      bool
	resumed chan struct{} // closed by Resume
	until   time.Time
}

// Pause stops handing new connections to any backend: they wait, connected to the endpoint,
// until Resume, and are refused when max passes first. Connections already relayed are left
// alone; CloseConnectionsTo ends them. Pausing a paused endpoint keeps the first bound.
func (p *Proxy) Pause(max time.Duration) {
	p.mu.Lock()
	if p.pause.on {
		p.mu.Unlock()
		return
	}
	p.pause = pauseState{on: true, resumed: make(chan struct{}), until: time.Now().Add(max)}
	p.log.Info("endpoint paused", "endpoint", p.Name)
	p.mu.Unlock()
	p.syncKernel() // no rule: new connections reach the proxy, which holds them
}

// Resume lets waiting and new connections through to the backends again.
func (p *Proxy) Resume() {
	p.mu.Lock()
	if !p.pause.on {
		p.mu.Unlock()
		return
	}
	p.pause.on = false
	close(p.pause.resumed)
	p.log.Info("endpoint resumed", "endpoint", p.Name, "backends", p.backends)
	p.mu.Unlock()
	p.syncKernel()
}

// Paused reports whether the endpoint holds new connections back.
func (p *Proxy) Paused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pause.on
}

// waitResume is called when no backend can be picked: while the endpoint is paused it waits
// for Resume and reports true (try again); false when not paused, on the pause's bound, or when
// the endpoint closes.
func (p *Proxy) waitResume(net.Conn) bool {
	p.mu.Lock()
	st, closed := p.pause, p.closed
	p.mu.Unlock()
	if !st.on || closed {
		return false
	}
	bound := time.NewTimer(time.Until(st.until))
	defer bound.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-st.resumed:
			return true
		case <-bound.C:
			p.log.Warn("endpoint paused too long; connection refused", "endpoint", p.Name)
			return false
		case <-tick.C:
			p.mu.Lock()
			closed := p.closed
			p.mu.Unlock()
			if closed {
				return false
			}
		}
	}
}
