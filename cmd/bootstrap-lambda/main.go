// Command bootstrap-lambda is the database stack's bootstrap custom resource (provided.al2023,
// arm64): it runs package bootstrap on Create and Update and answers CloudFormation.
package main

import (
	"context"
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
		log.Error("load AWS configuration", "err", err)
		os.Exit(1)
	}
	lambda.Start(customresource.New(secretsmanager.NewFromConfig(cfg), log).Handle)
}
