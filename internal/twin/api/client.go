package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"

	"github.com/apgstack/apgstack"
)

// ErrNotRunning is returned when no supervisor listens on the socket.
var ErrNotRunning = errors.New("supervisor not running")

// RemoteError is a request the supervisor answered with an error. Its message is the
// supervisor's own, without HTTP details, so that a user reads what went wrong.
type RemoteError struct {
	Status  int // HTTP status: 400 bad request, 409 conflict, 503 not ready, 500 failure
	Message string
}

func (e *RemoteError) Error() string { return e.Message }

// BadRequest says the supervisor refused the request as asked (a usage error for the CLI).
func (e *RemoteError) BadRequest() bool {
	return e.Status == http.StatusBadRequest || e.Status == http.StatusConflict
}

// Client talks to one supervisor: one typed method per route.
type Client struct {
	socket string
	http   *http.Client
}

// NewClient returns a client for the supervisor listening on socketPath.
func NewClient(socketPath string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socketPath)
		},
		DisableKeepAlives: true,
	}
	return &Client{socket: socketPath, http: &http.Client{Transport: tr}}
}

// Status returns the supervisor's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	return st, c.do(ctx, http.MethodGet, PathStatus, nil, &st)
}

// Events returns the event log.
func (c *Client) Events(ctx context.Context) ([]Event, error) {
	var ev []Event
	return ev, c.do(ctx, http.MethodGet, PathEvents, nil, &ev)
}

// Shutdown asks the supervisor to stop everything; it returns once the request is accepted.
func (c *Client) Shutdown(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, PathShutdown, nil, nil)
}

// Failover asks for a planned switchover to target (a reader's name, or "" for the best one)
// and returns once it is done.
func (c *Client) Failover(ctx context.Context, target string) (Failover, error) {
	var res Failover
	return res, c.do(ctx, http.MethodPost, PathFailover, FailoverRequest{Target: target}, &res)
}

// RotateSecret rotates the secret of role (master, owner, rw, ro or all) now. A rotation that
// failed is reported in its entry's Error (AWSCURRENT still works).
func (c *Client) RotateSecret(ctx context.Context, role string) ([]Rotation, error) {
	var res []Rotation
	return res, c.do(ctx, http.MethodPost, PathRotateSecret, RotateRequest{Role: role}, &res)
}

// Backups describes the backup repository: its backups and archived WAL.
func (c *Client) Backups(ctx context.Context) (BackupInfo, error) {
	var info BackupInfo
	return info, c.do(ctx, http.MethodGet, PathBackups, nil, &info)
}

// BackupNow takes a backup of typ (full, diff, incr, or "" for the schedule's choice).
func (c *Client) BackupNow(ctx context.Context, typ string) (BackupInfo, error) {
	var info BackupInfo
	return info, c.do(ctx, http.MethodPost, PathBackups, BackupRequest{Type: typ}, &info)
}

// ArchiveNow returns once every transaction committed so far is in the repository.
func (c *Client) ArchiveNow(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, PathArchive, nil, nil)
}

// Snapshots lists the twin's snapshots.
func (c *Client) Snapshots(ctx context.Context) ([]Snapshot, error) {
	var list []Snapshot
	return list, c.do(ctx, http.MethodGet, PathSnapshots, nil, &list)
}

// CreateSnapshot takes a snapshot of the writer; kind is manual ("") or final.
func (c *Client) CreateSnapshot(ctx context.Context, name, kind string) (Snapshot, error) {
	var sn Snapshot
	return sn, c.do(ctx, http.MethodPost, PathSnapshots, SnapshotRequest{Name: name, Kind: kind}, &sn)
}

// Metrics returns the latest samples, the alarms' states and the notifications' counters.
func (c *Client) Metrics(ctx context.Context) (MetricsReport, error) {
	var rep MetricsReport
	return rep, c.do(ctx, http.MethodGet, PathMetrics, nil, &rep)
}

// Reconfigure hands the running twin a changed configuration (see ReconfigureRequest).
func (c *Client) Reconfigure(ctx context.Context, cfg apgstack.Config) (ReconfigureResult, error) {
	var res ReconfigureResult
	return res, c.do(ctx, http.MethodPut, PathReconfigure, ReconfigureRequest{Config: cfg}, &res)
}

// Reboot restarts an instance ("" is the writer), failing the writer over first when asked.
func (c *Client) Reboot(ctx context.Context, instance string, failover bool) (RebootResult, error) {
	var res RebootResult
	return res, c.do(ctx, http.MethodPost, PathReboot, RebootRequest{Instance: instance, Failover: failover}, &res)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://supervisor"+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("%w (no one listens on %s)", ErrNotRunning, c.socket)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("the supervisor (%s) did not answer: %w", c.socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e Error
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Message == "" {
			e.Message = "the supervisor answered " + resp.Status
		}
		return &RemoteError{Status: resp.StatusCode, Message: e.Message}
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("the supervisor's answer to %s: %w", path, err)
	}
	return nil
}
