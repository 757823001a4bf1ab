package api

import (
	"context"
	"errors"
	"net"
	"net/http"
)

// ErrNotRunning is returned when no supervisor listens on the socket.
var ErrNotRunning = errors.New("supervisor not running")

// Client talks to one supervisor.
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
	return st, c.do(ctx, http.MethodGet, PathStatus, &st)
}

// Events returns the event log.
func (c *Client) Events(ctx context.Context) ([]Event, error) {
	var ev []Event
	return ev, c.do(ctx, http.MethodGet, PathEvents, &ev)
}

// Shutdown asks the supervisor to stop everything; it returns once the request is accepted.
func (c *Client) Shutdown(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, PathShutdown, nil)
}

func (c *Client) do(ctx context.Context, method, path string, out any) error {
	return c.Call(ctx, method, path, nil, out)
}
