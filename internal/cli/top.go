package cli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/apgstack/apgstack/internal/topview"
	"github.com/apgstack/apgstack/internal/twin"
	"github.com/apgstack/apgstack/internal/twin/api"
)

func newTopCmd(a *App) *cobra.Command {
	var lf localFlags
	var interval time.Duration
	var follow bool
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Live view of the local twin: instances, endpoints, alarms, last events",
		Long: `A live terminal view of the local twin, refreshed every second: the instances with role,
state, lag and sparklines of TPS, connections and CPU, the endpoints and the instances behind them,
the alarms not OK and the last events. Keys: up/down select an instance, s switches over to the
selected reader (after a confirmation), p opens psql on the selected instance (the view resumes
when psql exits), q quits.

When stdout is not a terminal, top prints one frame as plain text and exits, or with --follow a
line per refresh until interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if interval <= 0 {
				return fmt.Errorf("--interval %s: must be positive, e.g. 1s", interval)
			}
			t, err := a.localTwin(cmd, lf, "top")
			if err != nil {
				return err
			}
			src := &topSource{t: t}
			ctx := cmd.Context()
			out, ok := a.Stdout.(*os.File)
			if !ok || !term.IsTerminal(int(out.Fd())) {
				return topPlain(ctx, a, src, interval, follow)
			}
			if _, err := t.client().Status(ctx); err != nil {
				return t.notRunning(err)
			}
			in, _ := a.Stdin.(*os.File)
			p := tea.NewProgram(topview.NewModel(ctx, src, interval), tea.WithAltScreen(), tea.WithContext(ctx),
				tea.WithInput(in), tea.WithOutput(out))
			_, err = p.Run()
			return err
		},
	}
	lf.add(cmd)
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "time between refreshes")
	cmd.Flags().BoolVar(&follow, "follow", false, "when stdout is not a terminal: a line per refresh instead of one frame")
	return cmd
}

// topPlain is top without a terminal: one frame, or a line per refresh.
func topPlain(ctx context.Context, a *App, src *topSource, interval time.Duration, follow bool) error {
	if !follow {
		f := src.Frame(ctx)
		if f.Err != nil {
			return src.t.notRunning(f.Err)
		}
		h := topview.NewHistory()
		h.Add(f)
		_, err := fmt.Fprint(a.Stdout, topview.Render(f, h, topview.View{Selected: -1}))
		return err
	}
	for {
		fmt.Fprintln(a.Stdout, topview.Line(src.Frame(ctx)))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}

// topSource reads the twin through the supervisor's API client.
type topSource struct{ t *localTarget }

func (s *topSource) Frame(ctx context.Context) topview.Frame {
	f := topview.Frame{At: time.Now()}
	c := s.t.client()
	if f.Status, f.Err = c.Status(ctx); f.Err != nil {
		return f
	}
	if f.Metrics, f.Err = c.Metrics(ctx); f.Err != nil {
		return f
	}
	f.Events, f.Err = c.Events(ctx)
	return f
}

func (s *topSource) Switchover(ctx context.Context, target string) (api.Failover, error) {
	return s.t.client().Failover(ctx, target)
}

// PSQL is psql on one instance's own port (not an endpoint) as the master user, verify-full.
func (s *topSource) PSQL(in api.Instance) (*exec.Cmd, func(), error) {
	bin, err := twin.PSQLBinary()
	if err != nil {
		return nil, nil, err
	}
	p, err := twin.PSQLEnv(s.t.cfg, s.t.dir, false)
	if err != nil {
		return nil, nil, err
	}
	// The password file names the writer endpoint's port: point it and PGPORT at the instance.
	from, to := strconv.Itoa(s.t.cfg.Database.Port), strconv.Itoa(in.Port)
	for _, kv := range p.Env {
		if path, ok := strings.CutPrefix(kv, "PGPASSFILE="); ok {
			b, err := os.ReadFile(path)
			if err != nil {
				p.Cleanup()
				return nil, nil, err
			}
			if err := os.WriteFile(path, []byte(strings.Replace(string(b), ":"+from+":", ":"+to+":", 1)), 0o600); err != nil {
				p.Cleanup()
				return nil, nil, err
			}
		}
	}
	c := exec.Command(bin)
	c.Env = append(append(withoutPG(os.Environ()), p.Env...), "PGPORT="+to)
	return c, p.Cleanup, nil
}
