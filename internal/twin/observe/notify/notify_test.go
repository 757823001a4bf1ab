package notify

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/apgstack/apgstack/internal/testkit/notifytest"
)

func waitMessages(t *testing.T, srv *notifytest.Server, n int) []notifytest.Received {
	t.Helper()
	deadline := time.After(30 * time.Second) // a bound on a hang, not a timing assertion
	for len(srv.Messages()) < n {
		select {
		case <-srv.Arrived():
		case <-deadline:
			t.Fatalf("%d messages arrived, want %d", len(srv.Messages()), n)
		}
	}
	return srv.Messages()
}

func TestDeliversWithRetries(t *testing.T) {
	srv, err := notifytest.Start(2) // the first two attempts fail with 451
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	m, err := New(Options{Addr: srv.Addr, To: "dba@example.com, ops@example.com", Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	m.Send(Message{Subject: "alarm CPUAlarmWriter: OK -> ALARM\r\nBcc: evil@example.com", Body: "CPUUtilization >= 80 %\nconnect with password=hunter2 or postgres://u:hunter2@h/db"})
	got := waitMessages(t, srv, 1)[0]
	if got.From != "apgstack@localhost" || strings.Join(got.To, ",") != "dba@example.com,ops@example.com" {
		t.Fatalf("envelope: %+v", got)
	}
	if !strings.Contains(got.Data, "Subject: alarm CPUAlarmWriter: OK -> ALARM Bcc: evil@example.com\r\n") {
		t.Fatalf("subject not kept on one line:\n%s", got.Data)
	}
	if strings.Contains(got.Data, "\nBcc:") || strings.Contains(got.Data, "hunter2") {
		t.Fatalf("header injected or secret sent:\n%s", got.Data)
	}
	if !strings.Contains(got.Data, "CPUUtilization >= 80 %") {
		t.Fatalf("body:\n%s", got.Data)
	}
	// The server has the message before the client has QUIT: wait for the count.
	for deadline := time.Now().Add(30 * time.Second); m.Stats().Sent == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	st := m.Stats()
	if st.Sent != 1 || st.Failed != 0 || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSendNeverBlocksAndDropsOldest(t *testing.T) {
	// Nothing runs the queue: Send must still return, and a full queue loses its oldest message.
	m, err := New(Options{Addr: "127.0.0.1:1", To: "dba@example.com", QueueSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		m.Send(Message{Subject: string(rune('a' + i))})
	}
	st := m.Stats()
	if st.Queued != 3 || st.Dropped != 2 {
		t.Fatalf("stats %+v", st)
	}
	if msg, _ := m.next(); msg.Subject != "c" {
		t.Fatalf("oldest kept is %q, want c", msg.Subject)
	}
}

func TestGivesUpAfterAttempts(t *testing.T) {
	// A port nobody listens on: every attempt is refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	m, err := New(Options{Addr: addr, To: "dba@example.com", Attempts: 3, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	m.deliver(context.Background(), Message{Subject: "x"})
	if st := m.Stats(); st.Failed != 1 || st.Sent != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRefusesBadOptions(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Addr: "mail.example.com", To: "a@example.com"}, `target.local.smtp "mail.example.com"`},
		{Options{Addr: "127.0.0.1:25", To: "not an address"}, `environment.notificationList "not an address"`},
		{Options{Addr: "127.0.0.1:25", To: " , "}, "no e-mail address"},
	} {
		if _, err := New(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.o, err, tc.want)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"password=abc def":                "password=[redacted] def",
		`secret: "a b" rest`:              "secret: [redacted] rest",
		"postgres://user:pw@host:5432/db": "postgres://user:[redacted]@host:5432/db",
		"instance1 stopped unexpectedly":  "instance1 stopped unexpectedly",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
