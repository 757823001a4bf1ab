// Package progress shows long-running work as it happens: one line per event and, on a
// terminal, a compact view of what is still in progress with elapsed times, redrawn in place
// below the event lines. Without a terminal it writes plain lines only; colour is used only
// when asked for (callers pass Color=false when NO_COLOR is set).
package progress

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// Event is one resource event of a stack (CloudFormation's StackEvent, or a local one).
type Event struct {
	Stack      string
	LogicalID  string
	Type       string
	Status     string
	Reason     string
	PhysicalID string
	Time       time.Time
}

// Options configure a View.
type Options struct {
	Live  bool             // redraw an in-progress block (a terminal)
	Color bool             // ANSI colours
	Now   func() time.Time // clock for elapsed times; time.Now when nil
	// MaxRows caps the in-progress block (default 8); the rest is counted.
	MaxRows int
}

// View is the progress view. It is safe for concurrent use.
type View struct {
	w     io.Writer
	o     Options
	mu    sync.Mutex
	start map[string]time.Time // per stack
	order []string             // stacks in start order, for the footer
	busy  map[string]busy      // stack/logical -> first seen in progress
	drawn int                  // lines of the live block currently on screen
}

type busy struct {
	ev    Event
	since time.Time
}

// New returns a view writing to w.
func New(w io.Writer, o Options) *View {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxRows == 0 {
		o.MaxRows = 8
	}
	return &View{w: w, o: o, start: map[string]time.Time{}, busy: map[string]busy{}}
}

// Printf writes a message line.
func (v *View) Printf(format string, args ...any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.clear()
	fmt.Fprintf(v.w, format+"\n", args...)
	v.draw()
}

// StackStart notes that work on a stack began (elapsed time counts from here).
func (v *View) StackStart(stack, what string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.start[stack]; !ok {
		v.order = append(v.order, stack)
	}
	v.start[stack] = v.o.Now()
	v.clear()
	fmt.Fprintf(v.w, "%s: %s\n", stack, what)
	v.draw()
}

// StackDone notes the end of the work on a stack and prints its status and elapsed time.
func (v *View) StackDone(stack, status string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.clear()
	elapsed := ""
	if t, ok := v.start[stack]; ok {
		elapsed = " after " + round(v.o.Now().Sub(t))
		delete(v.start, stack)
	}
	for k, b := range v.busy {
		if b.ev.Stack == stack || strings.HasPrefix(b.ev.Stack, stack+"-") {
			delete(v.busy, k)
		}
	}
	fmt.Fprintf(v.w, "%s: %s%s\n", stack, v.paint(status), elapsed)
	v.draw()
}

// Event prints one event and updates the in-progress block.
func (v *View) Event(e Event) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.clear()
	line := fmt.Sprintf("%s  %-20s %-36s %-28s %s", e.Time.Local().Format("15:04:05"), e.Stack, v.paint(fmt.Sprintf("%-28s", e.Status)), e.LogicalID, e.Type)
	if e.Reason != "" && e.Reason != "User Initiated" {
		line += "  " + e.Reason
	}
	fmt.Fprintln(v.w, strings.TrimRight(line, " "))
	key := e.Stack + "/" + e.LogicalID
	switch {
	case strings.HasSuffix(e.Status, "_IN_PROGRESS") && e.LogicalID != e.Stack:
		if _, ok := v.busy[key]; !ok {
			v.busy[key] = busy{ev: e, since: v.o.Now()}
		}
	default:
		delete(v.busy, key)
	}
	v.draw()
}

// Tick redraws the in-progress block so elapsed times move on.
func (v *View) Tick() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.clear()
	v.draw()
}

// Close removes the in-progress block.
func (v *View) Close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.clear()
}

// clear erases the live block (cursor up, clear to end of screen).
func (v *View) clear() {
	if v.drawn > 0 {
		fmt.Fprintf(v.w, "\x1b[%dA\x1b[J", v.drawn)
		v.drawn = 0
	}
}

func (v *View) draw() {
	if !v.o.Live || len(v.start) == 0 {
		return
	}
	now := v.o.Now()
	var lines []string
	for _, s := range v.order {
		if t, ok := v.start[s]; ok {
			lines = append(lines, fmt.Sprintf("── %s: %s elapsed", s, round(now.Sub(t))))
		}
	}
	items := make([]busy, 0, len(v.busy))
	for _, b := range v.busy {
		items = append(items, b)
	}
	sort.Slice(items, func(i, j int) bool {
		if !items[i].since.Equal(items[j].since) {
			return items[i].since.Before(items[j].since)
		}
		return items[i].ev.LogicalID < items[j].ev.LogicalID
	})
	for i, b := range items {
		if i == v.o.MaxRows {
			lines = append(lines, fmt.Sprintf("   … and %d more in progress", len(items)-i))
			break
		}
		lines = append(lines, fmt.Sprintf("   %-28s %-36s %s", b.ev.LogicalID, b.ev.Type, round(now.Sub(b.since))))
	}
	for _, l := range lines {
		fmt.Fprintln(v.w, v.dim(l))
	}
	v.drawn = len(lines)
}

func round(d time.Duration) string {
	if d < time.Second {
		return "0s"
	}
	return d.Round(time.Second).String()
}

// paint colours a status: failures and rollbacks red, work in progress yellow, done green.
func (v *View) paint(s string) string {
	if !v.o.Color {
		return s
	}
	t := strings.TrimSpace(s)
	switch {
	case strings.Contains(t, "FAILED") || strings.Contains(t, "ROLLBACK"):
		return "\x1b[31m" + s + "\x1b[0m"
	case strings.HasSuffix(t, "IN_PROGRESS"):
		return "\x1b[33m" + s + "\x1b[0m"
	case strings.HasSuffix(t, "COMPLETE"):
		return "\x1b[32m" + s + "\x1b[0m"
	}
	return s
}

func (v *View) dim(s string) string {
	if !v.o.Color {
		return s
	}
	return "\x1b[2m" + s + "\x1b[0m"
}
