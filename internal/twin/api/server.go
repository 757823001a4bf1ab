package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// Error is the body of a failed request.
type Error struct {
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Listen opens the API socket: its directory is made 0700 and the socket 0600, both owned by the
// caller, so only the owner (root, or the user running apgstack) can control the supervisor.
// A stale socket file from a supervisor that died is replaced.
func Listen(socketPath string) (net.Listener, error) {
	dir := filepath.Dir(socketPath)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("api socket dir %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("api socket dir %s: %w", dir, err)
	}
	if _, err := os.Stat(socketPath); err == nil {
		if c, err := net.DialTimeout("unix", socketPath, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("api socket %s: a supervisor is already listening", socketPath)
		}
		_ = os.Remove(socketPath)
	}
	ln, err := net.Listen("unix", socketPath)
	if err != nil {
		return nil, fmt.Errorf("api socket %s: %w", socketPath, err)
	}
	if err := os.Chmod(socketPath, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("api socket %s: %w", socketPath, err)
	}
	return ln, nil
}

// Serve runs the API until ctx ends.
func Serve(ctx context.Context, ln net.Listener, b Backend) error {
	srv := &http.Server{Handler: Handler(b), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
