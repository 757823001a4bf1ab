// Command mkrelease builds the bootstrap Lambda's zip into internal/aws/lambdazip/release, where
// a release build (go build -tags apgstack_release) embeds it; .goreleaser.yaml runs it first.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/apgstack/apgstack/internal/aws/lambdazip"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mkrelease:", err)
		os.Exit(1)
	}
}

func run() error {
	mod, err := lambdazip.FindModule(".")
	if err != nil {
		return err
	}
	dir := filepath.Join(mod, "internal", "aws", "lambdazip", "release")
	res, err := lambdazip.Build(context.Background(), mod, dir)
	if err != nil {
		return err
	}
	// The embedded name is fixed; the content-addressed key comes from its SHA-256.
	if err := os.Rename(res.Path, filepath.Join(dir, "bootstrap-lambda.zip")); err != nil {
		return err
	}
	fmt.Println(res.Key)
	return nil
}
