// Package client is the typed client of the supervisor's control API (package api).
package client

import (
	"context"
	"errors"
	"net"
	"net/http"

	"github.com/apgstack/apgstack/api"
)

// ErrNotRunning is returned when no supervisor listens on the socket.
var ErrNotRunning = errors.New("supervisor not running")

// Client talks to one supervisor.
type Client struct {
	socket string
	http   *http.Client
}

// New returns a client for the supervisor listening on socketPath.
func New(socketPath string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socketPath)
		},
		DisableKeepAlives: true,
	}
	return &Client{socket: socketPath, http: &http.Client{Transport: tr}}
}

// Status returns the supervisor's status.
func (c *Client) Status(ctx context.Context) (api.Status, error) {
	var st api.Status
	return st, c.do(ctx, http.MethodGet, api.PathStatus, &st)
}

// Events returns the event log.
func (c *Client) Events(ctx context.Context) ([]api.Event, error) {
	var ev []api.Event
	return ev, c.do(ctx, http.MethodGet, api.PathEvents, &ev)
}

// Shutdown asks the supervisor to stop everything; it returns once the request is accepted.
func (c *Client) Shutdown(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, api.PathShutdown, nil)
}

func (c *Client) do(ctx context.Context, method, path string, out any) error {
	return c.Call(ctx, method, path, nil, out)
}
