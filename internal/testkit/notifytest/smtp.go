// Package notifytest is a minimal SMTP server on 127.0.0.1 for the tests of notify and of the
// supervisor: it accepts every message and keeps it.
package notifytest

import (
	"bufio"
	"net"
	"strings"
	"sync"
)

// Server is the test SMTP server.
type Server struct {
	Addr string
	ln   net.Listener

	mu        sync.Mutex
	received  []Received
	failFirst int
	notify    chan struct{}
	wg        sync.WaitGroup
}

// Received is one accepted message.
type Received struct {
	From string
	To   []string
	Data string
}

// Start listens on a free loopback port; the first failFirst DATA commands get a temporary
// failure (451), to exercise retries. Close it when done.
func Start(failFirst int) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: ln.Addr().String(), ln: ln, failFirst: failFirst, notify: make(chan struct{}, 100)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() { defer s.wg.Done(); s.serve(c) }()
		}
	}()
	return s, nil
}

// Close stops the server and waits for its connections to end.
func (s *Server) Close() {
	s.ln.Close()
	s.wg.Wait()
}

// Messages returns what was received so far.
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.received...)
}

// Arrived receives a value each time a message is accepted.
func (s *Server) Arrived() <-chan struct{} { return s.notify }

func (s *Server) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	reply := func(line string) { _, _ = c.Write([]byte(line + "\r\n")) }
	reply("220 127.0.0.1 apgstack test SMTP")
	var cur Received
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb := strings.ToUpper(line)
		switch {
		case strings.HasPrefix(verb, "EHLO"), strings.HasPrefix(verb, "HELO"):
			reply("250 127.0.0.1")
		case strings.HasPrefix(verb, "MAIL FROM:"):
			cur = Received{From: strings.Trim(line[len("MAIL FROM:"):], "<> ")}
			reply("250 OK")
		case strings.HasPrefix(verb, "RCPT TO:"):
			cur.To = append(cur.To, strings.Trim(line[len("RCPT TO:"):], "<> "))
			reply("250 OK")
		case verb == "DATA":
			s.mu.Lock()
			fail := s.failFirst > 0
			if fail {
				s.failFirst--
			}
			s.mu.Unlock()
			if fail {
				reply("451 try again later")
				continue
			}
			reply("354 end with <CRLF>.<CRLF>")
			var data strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" || l == ".\n" {
					break
				}
				data.WriteString(strings.TrimPrefix(l, "."))
			}
			cur.Data = data.String()
			s.mu.Lock()
			s.received = append(s.received, cur)
			s.mu.Unlock()
			select {
			case s.notify <- struct{}{}:
			default:
			}
			reply("250 OK queued")
		case verb == "RSET":
			cur = Received{}
			reply("250 OK")
		case verb == "NOOP":
			reply("250 OK")
		case verb == "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 not implemented")
		}
	}
}
