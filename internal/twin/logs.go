package twin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/apgstack/apgstack/internal/twin/statedir"
	"github.com/apgstack/apgstack/internal/twin/supervisor"
)

// LogSource is one log of a twin: the supervisor's, or an instance's server log.
type LogSource struct {
	Name  string   // "supervisor" or the instance's name
	Files []string // oldest first; the last one grows
}

// LogSources lists the logs of the twin in stateDir: the supervisor's when supervisor is set or
// nothing is named, and the server logs of instance (every instance when instance is "" and
// supervisor is not set).
func LogSources(stateDir, instance string, withSupervisor bool) ([]LogSource, error) {
	l := statedir.Layout{Root: stateDir}
	var out []LogSource
	if withSupervisor || instance == "" {
		out = append(out, LogSource{Name: "supervisor", Files: []string{l.LogFile()}})
	}
	if withSupervisor && instance == "" {
		return out, nil
	}
	st, _, err := supervisor.LoadState(l)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, in := range st.Instances {
		names = append(names, in.Name)
	}
	if instance != "" && !slices.Contains(names, instance) {
		return nil, fmt.Errorf("--instance %q: no such instance (instances: %s)", instance, strings.Join(names, ", "))
	}
	for _, name := range names {
		if instance != "" && name != instance {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(l.DataDir(name), "log", "postgresql-*.log"))
		slices.Sort(files) // named by their start time
		out = append(out, LogSource{Name: name, Files: files})
	}
	return out, nil
}

// lineTime reads the time a log line starts with: the supervisor's "time=RFC3339" or the
// server's "2006-01-02 15:04:05.000 UTC" prefix (log_line_prefix). ok is false for a line that
// continues the one before.
func lineTime(line string) (time.Time, bool) {
	if rest, found := strings.CutPrefix(line, "time="); found {
		v, _, _ := strings.Cut(rest, " ")
		t, err := time.Parse(time.RFC3339Nano, v)
		return t, err == nil
	}
	if len(line) >= 27 {
		if t, err := time.Parse("2006-01-02 15:04:05.000 MST", line[:27]); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// WriteLogs copies the lines of the sources written since since (zero: all) to w, each prefixed
// with its source when there are several; with follow, it then goes on copying what is appended
// until ctx ends.
func WriteLogs(ctx context.Context, w io.Writer, sources []LogSource, since time.Time, follow bool) error {
	prefix := func(s LogSource) string {
		if len(sources) > 1 {
			return s.Name + ": "
		}
		return ""
	}
	offsets := map[string]int64{}
	for _, s := range sources {
		for _, f := range s.Files {
			n, err := copyLines(w, f, 0, prefix(s), since)
			if err != nil {
				return err
			}
			offsets[f] = n
		}
	}
	if !follow {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
		for _, s := range sources {
			files := s.Files
			if s.Name != "supervisor" && len(files) > 0 { // a server starts a new file at rotation
				more, _ := filepath.Glob(filepath.Join(filepath.Dir(files[0]), "postgresql-*.log"))
				slices.Sort(more)
				files = more
			}
			for _, f := range files {
				n, err := copyLines(w, f, offsets[f], prefix(s), time.Time{})
				if err != nil {
					return err
				}
				offsets[f] = n
			}
		}
	}
}

// copyLines copies the whole lines of path from offset on, keeping those of since or later (with
// the lines that continue them), and returns the offset after the last whole line.
func copyLines(w io.Writer, path string, offset int64, prefix string, since time.Time) (int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return offset, nil
	}
	if err != nil {
		return offset, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return offset, err
	}
	r := bufio.NewReader(f)
	keep := since.IsZero()
	for {
		line, err := r.ReadString('\n')
		if err != nil { // a partial last line waits for its end
			return offset, nil
		}
		offset += int64(len(line))
		if t, ok := lineTime(line); ok && !since.IsZero() {
			keep = !t.Before(since)
		}
		if keep {
			if _, err := io.WriteString(w, prefix+line); err != nil {
				return offset, err
			}
		}
	}
}
