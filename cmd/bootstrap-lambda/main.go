// Command bootstrap-lambda is the database stack's bootstrap custom resource (provided.al2023,
// arm64): it runs package bootstrap on Create and Update, waits for the master secret's first
// rotation when asked, and answers CloudFormation on every path.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/apgstack/apgstack/internal/aws/customresource"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		// Still answer CloudFormation, which would otherwise wait an hour for a response.
		log.Error("load AWS configuration", "err", err)
		lambda.Start(customresource.InitFailed(fmt.Errorf("load AWS configuration: %w", err), log))
		return
	}
	lambda.Start(customresource.New(secretsmanager.NewFromConfig(cfg), log).Handle)
}
