// Command apgstack: see the cli package.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/apgstack/apgstack/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Environ())
	stop()
	os.Exit(code)
}
