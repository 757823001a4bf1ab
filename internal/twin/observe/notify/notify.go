// Package notify sends the local twin's notifications (alarm transitions and subscribed events)
// by e-mail to the NotificationList, as the database stack's SNS topic does with its e-mail
// subscription. Sending never blocks the caller: messages go into a bounded queue that a worker
// drains with retries and exponential backoff; when the queue is full the oldest message is
// dropped and counted.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/smtp"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Message is one notification.
type Message struct {
	Subject string
	Body    string
	Time    time.Time
}

// Options configure a Mailer.
type Options struct {
	// Addr is the SMTP relay, host:port (target.local.smtp).
	Addr string
	// From is the sender; empty means apgstack@localhost.
	From string
	// To is the NotificationList: one or more addresses separated by commas.
	To string
	// QueueSize bounds the queue (default 100).
	QueueSize int
	// Attempts per message (default 5), waiting Backoff, 2×Backoff, ... (default 1 s, at most
	// MaxBackoff, default 1 min) between them.
	Attempts   int
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Timeout bounds one delivery attempt (default 30 s).
	Timeout time.Duration
	Log     *slog.Logger
}

// Stats count what happened to messages.
type Stats struct {
	Queued  int `json:"queued"`
	Sent    int `json:"sent"`
	Failed  int `json:"failed"`  // gave up after every attempt
	Dropped int `json:"dropped"` // pushed out of a full queue
}

// Mailer queues and sends notifications.
type Mailer struct {
	opts Options
	from string
	to   []string

	mu    sync.Mutex
	queue []Message
	stats Stats
	wake  chan struct{}
}

// New checks the options; nothing is sent before Run.
func New(o Options) (*Mailer, error) {
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		return nil, fmt.Errorf("target.local.smtp %q: host:port of an SMTP relay expected: %w", o.Addr, err)
	}
	if o.From == "" {
		o.From = "apgstack@localhost"
	}
	from, err := mail.ParseAddress(o.From)
	if err != nil {
		return nil, fmt.Errorf("notification sender %q: %w", o.From, err)
	}
	var to []string
	for _, a := range strings.Split(o.To, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		addr, err := mail.ParseAddress(a)
		if err != nil {
			return nil, fmt.Errorf("environment.notificationList %q: %q is not an e-mail address: %w", o.To, a, err)
		}
		to = append(to, addr.Address)
	}
	if len(to) == 0 {
		return nil, fmt.Errorf("environment.notificationList %q: no e-mail address to notify", o.To)
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 100
	}
	if o.Attempts <= 0 {
		o.Attempts = 5
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Minute
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Mailer{opts: o, from: from.Address, to: to, wake: make(chan struct{}, 1)}, nil
}

// Send queues a message and returns at once. When the queue is full the oldest message is
// dropped (and counted): the newest news matters most.
func (m *Mailer) Send(msg Message) {
	if msg.Time.IsZero() {
		msg.Time = time.Now()
	}
	m.mu.Lock()
	if len(m.queue) >= m.opts.QueueSize {
		m.queue = m.queue[1:]
		m.stats.Dropped++
	}
	m.queue = append(m.queue, msg)
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Stats returns the counters.
func (m *Mailer) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.stats
	s.Queued = len(m.queue)
	return s
}

func (m *Mailer) next() (Message, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.queue) == 0 {
		return Message{}, false
	}
	msg := m.queue[0]
	m.queue = m.queue[1:]
	return msg, true
}

// Run delivers queued messages until ctx ends.
func (m *Mailer) Run(ctx context.Context) {
	for {
		msg, ok := m.next()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-m.wake:
				continue
			}
		}
		m.deliver(ctx, msg)
	}
}

func (m *Mailer) deliver(ctx context.Context, msg Message) {
	wait := m.opts.Backoff
	for attempt := 1; ; attempt++ {
		err := m.sendOnce(ctx, msg)
		if err == nil {
			m.mu.Lock()
			m.stats.Sent++
			m.mu.Unlock()
			return
		}
		if attempt >= m.opts.Attempts || ctx.Err() != nil {
			m.mu.Lock()
			m.stats.Failed++
			m.mu.Unlock()
			m.opts.Log.Warn("notification not delivered", "subject", msg.Subject, "attempts", attempt, "err", err)
			return
		}
		m.opts.Log.Info("notification delivery failed; retrying", "subject", msg.Subject, "attempt", attempt, "in", wait, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, m.opts.MaxBackoff)
	}
}

// sendOnce speaks SMTP to the relay once, within the timeout.
func (m *Mailer) sendOnce(ctx context.Context, msg Message) error {
	ctx, cancel := context.WithTimeout(ctx, m.opts.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.opts.Addr)
	if err != nil {
		return fmt.Errorf("smtp %s: %w", m.opts.Addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	host, _, _ := net.SplitHostPort(m.opts.Addr)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return fmt.Errorf("smtp %s: %w", m.opts.Addr, err)
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return fmt.Errorf("smtp %s: HELO: %w", m.opts.Addr, err)
	}
	if err := c.Mail(m.from); err != nil {
		return fmt.Errorf("smtp %s: MAIL FROM: %w", m.opts.Addr, err)
	}
	for _, rcpt := range m.to {
		if err := c.Rcpt(rcpt); err != nil {
			return fmt.Errorf("smtp %s: RCPT TO %s: %w", m.opts.Addr, rcpt, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp %s: DATA: %w", m.opts.Addr, err)
	}
	if _, err := w.Write(m.compose(msg)); err != nil {
		return fmt.Errorf("smtp %s: write message: %w", m.opts.Addr, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp %s: end of message: %w", m.opts.Addr, err)
	}
	if err := c.Quit(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("smtp %s: QUIT: %w", m.opts.Addr, err)
	}
	return nil
}

// compose renders the message (RFC 5322, CRLF line ends). Header values cannot carry a line
// break, so no header can be injected through an event's text.
func (m *Mailer) compose(msg Message) []byte {
	var b strings.Builder
	header := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, oneLine(v)) }
	header("From", m.from)
	header("To", strings.Join(m.to, ", "))
	header("Subject", Redact(msg.Subject))
	header("Date", msg.Time.Format(time.RFC1123Z))
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")
	body := strings.ReplaceAll(Redact(msg.Body), "\r\n", "\n")
	for _, line := range strings.Split(body, "\n") {
		b.WriteString(line)
		b.WriteString("\r\n")
	}
	return []byte(b.String())
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.NewReplacer("\r", " ", "\n", " ").Replace(s)), " ")
}

// secretish matches "password=...", "secret: ..." and the like, and connection URLs with a
// password: a last guard, as events are written without secrets in the first place.
var secretish = []*regexp.Regexp{
	regexp.MustCompile(`(?i)\b(password|passwd|pwd|secret|passphrase|cipher-pass|token)(\s*[=:]\s*)("[^"]*"|'[^']*'|\S+)`),
	regexp.MustCompile(`(?i)(\b[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s]+@`),
}

// Redact hides what looks like a secret in s.
func Redact(s string) string {
	s = secretish[0].ReplaceAllString(s, "${1}${2}[redacted]")
	return secretish[1].ReplaceAllString(s, "${1}[redacted]@")
}
