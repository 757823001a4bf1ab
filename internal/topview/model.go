package topview

import (
	"context"
	"fmt"
	"os/exec"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/apgstack/apgstack/internal/twin/api"
)

// Source is where the model gets its data and performs its actions: the supervisor's API client
// in `apgstack top`.
type Source interface {
	Frame(ctx context.Context) Frame
	Switchover(ctx context.Context, target string) (api.Failover, error)
	// PSQL returns the psql command for an instance and a cleanup for its password file.
	PSQL(in api.Instance) (*exec.Cmd, func(), error)
}

// Model is the bubbletea model of `apgstack top`.
type Model struct {
	ctx      context.Context
	src      Source
	interval time.Duration
	frame    Frame
	hist     *History
	view     View
	confirm  string // the reader a switchover waits confirmation for
}

// NewModel returns a model refreshing every interval.
func NewModel(ctx context.Context, src Source, interval time.Duration) *Model {
	return &Model{ctx: ctx, src: src, interval: interval, hist: NewHistory()}
}

type frameMsg Frame
type tickMsg struct{}
type doneMsg string // the outcome of an action, shown on the prompt line

func (m *Model) fetch() tea.Cmd {
	return func() tea.Msg { return frameMsg(m.src.Frame(m.ctx)) }
}

func (m *Model) tick() tea.Cmd {
	return tea.Tick(m.interval, func(time.Time) tea.Msg { return tickMsg{} })
}

// Init fetches the first frame.
func (m *Model) Init() tea.Cmd { return m.fetch() }

// Update handles frames, ticks and keys: up/down or k/j select, s switches over (to the selected
// reader, after y), p opens psql on the selected instance, q quits.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case frameMsg:
		m.frame = Frame(msg)
		m.hist.Add(m.frame)
		if n := len(m.frame.Status.Instances); m.view.Selected >= n {
			m.view.Selected = max(0, n-1)
		}
		return m, m.tick()
	case tickMsg:
		return m, m.fetch()
	case doneMsg:
		m.view.Prompt = string(msg)
		return m, m.fetch()
	case tea.KeyMsg:
		if m.confirm != "" {
			target := m.confirm
			m.confirm = ""
			if msg.String() != "y" {
				m.view.Prompt = "switchover cancelled"
				return m, nil
			}
			m.view.Prompt = "switching over to " + target + "..."
			return m, func() tea.Msg {
				res, err := m.src.Switchover(m.ctx, target)
				if err != nil {
					return doneMsg("switchover: " + err.Error())
				}
				return doneMsg(fmt.Sprintf("switchover: %s is the writer now (was %s)", res.NewWriter, res.OldWriter))
			}
		}
		switch msg.String() {
		case "q", "ctrl+c":
			return m, tea.Quit
		case "up", "k":
			m.view.Selected = max(0, m.view.Selected-1)
		case "down", "j":
			m.view.Selected = min(len(m.frame.Status.Instances)-1, m.view.Selected+1)
		case "s":
			in, ok := m.selected()
			if !ok || in.Role != api.RoleReader {
				m.view.Prompt = "select a reader to switch over to (up/down), then press s"
				return m, nil
			}
			m.confirm = in.Name
			m.view.Prompt = fmt.Sprintf("switch over to %s? The writer endpoint will move. [y/N]", in.Name)
		case "p":
			in, ok := m.selected()
			if !ok {
				return m, nil
			}
			cmd, cleanup, err := m.src.PSQL(in)
			if err != nil {
				m.view.Prompt = "psql: " + err.Error()
				return m, nil
			}
			// The TUI is suspended while psql runs, and resumes after it exits.
			return m, tea.ExecProcess(cmd, func(err error) tea.Msg {
				cleanup()
				if err != nil {
					return doneMsg("psql: " + err.Error())
				}
				return doneMsg("psql on " + in.Name + " ended")
			})
		}
	}
	return m, nil
}

func (m *Model) selected() (api.Instance, bool) {
	ins := m.frame.Status.Instances
	if m.view.Selected < 0 || m.view.Selected >= len(ins) {
		return api.Instance{}, false
	}
	return ins[m.view.Selected], true
}

var (
	titleStyle = lipgloss.NewStyle().Bold(true)
	helpStyle  = lipgloss.NewStyle().Faint(true)
)

// View renders the frame with a bold title line and the key help.
func (m *Model) View() string {
	if m.frame.At.IsZero() {
		return "apgstack top: reading the supervisor...\n"
	}
	text := Render(m.frame, m.hist, m.view)
	title, rest, _ := cut(text)
	return titleStyle.Render(title) + "\n" + rest + "\n" + helpStyle.Render("↑/↓ select · s switchover to the selected reader · p psql on the selected instance · q quit") + "\n"
}

func cut(s string) (string, string, bool) {
	for i := range len(s) {
		if s[i] == '\n' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
