package api

import (
	"context"
	"net/http"
	"net/url"
)

// Failover asks for a planned switchover to target (a reader's name, or "" for the best one)
// and returns once it is done.
func (c *Client) Failover(ctx context.Context, target string) (Failover, error) {
	var res Failover
	return res, c.do(ctx, http.MethodPost, PathFailover+"?"+url.Values{"target": {target}}.Encode(), &res)
}

// RotateSecret rotates the secret of role (master, owner, rw, ro or all) now. A rotation that
// failed is reported in its entry's Error (AWSCURRENT still works).
func (c *Client) RotateSecret(ctx context.Context, role string) ([]Rotation, error) {
	var res []Rotation
	return res, c.do(ctx, http.MethodPost, PathRotateSecret+"?"+url.Values{"role": {role}}.Encode(), &res)
}
