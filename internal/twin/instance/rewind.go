package instance

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrRewind marks a failure of pg_rewind itself, as opposed to one of reaching the source or a
// cancellation: only then is it worth giving the old data up for a new base backup.
var ErrRewind = errors.New("pg_rewind failed")

// Rewind runs pg_rewind on this stopped server's data directory against the running writer
// source, and returns pg_rewind's output. After a clean shutdown with nothing to undo it finds
// "no rewind required".
func (i *Instance) Rewind(ctx context.Context, source *Instance) (string, error) {
	if !i.Initialized() {
		return "", fmt.Errorf("%w: no data directory", ErrRewind)
	}
	// pg_rewind reads the source's timeline from pg_control, which a promotion updates only with
	// its next checkpoint.
	if err := source.Checkpoint(ctx); err != nil {
		return "", err
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := i.Acct.Command(rctx, i.Bin.Path("pg_rewind"), "--target-pgdata="+i.DataDir(),
		fmt.Sprintf("--source-server=host=%s port=%d user=postgres dbname=postgres application_name=apgstack-rewind", source.SocketDir(), source.Port))
	// A supervisor killed mid-rewind takes pg_rewind with it: its successor rewinds again and
	// must not find this one still writing into the data directory.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: %s from %s: %w: %s", ErrRewind, i.Name, source.Name, err, strings.TrimSpace(out.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// Control is what pg_controldata tells about a data directory.
type Control struct {
	// State is the "Database cluster state": "shut down", "shut down in recovery",
	// "in production", "in archive recovery", ...
	State string
	// Checkpoint is the latest checkpoint's location, Timeline its timeline.
	Checkpoint string
	Timeline   int
}

// The cluster states LastCheckpoint accepts.
const (
	StateShutDown           = "shut down"
	StateShutDownInRecovery = "shut down in recovery"
)

// ControlData reads pg_control with pg_controldata.
func (i *Instance) ControlData(ctx context.Context) (Control, error) {
	cmd := i.Acct.Command(ctx, i.Bin.Path("pg_controldata"), "-D", i.DataDir())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return Control{}, fmt.Errorf("pg_controldata %s: %w: %s", i.Name, err, strings.TrimSpace(out.String()))
	}
	var c Control
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(k) {
		case "Database cluster state":
			c.State = v
		case "Latest checkpoint location":
			c.Checkpoint = v
		case "Latest checkpoint's TimeLineID":
			c.Timeline, _ = strconv.Atoi(v)
		}
	}
	if c.Checkpoint == "" {
		return Control{}, fmt.Errorf("pg_controldata %s: no latest checkpoint location", i.Name)
	}
	return c, nil
}

// LastCheckpoint is the location of a cleanly stopped writer's last checkpoint: its shutdown
// checkpoint, the last record it wrote.
func (i *Instance) LastCheckpoint(ctx context.Context) (string, error) {
	c, err := i.ControlData(ctx)
	if err != nil {
		return "", err
	}
	if c.State != StateShutDown {
		return "", fmt.Errorf("instance %s did not shut down cleanly (pg_control says %q)", i.Name, c.State)
	}
	return c.Checkpoint, nil
}
