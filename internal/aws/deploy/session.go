// Package deploy deploys and tears down apgstack's CloudFormation stacks: credentials and
// Region first, a preflight of the account, the bootstrap Lambda's zip, then each stack through
// a change set with live progress from its events, the root cause when something fails, and the
// outputs a person needs at the end.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

// Options select the account and Region. Empty fields fall back to the standard AWS
// configuration chain (AWS_PROFILE, AWS_REGION, ~/.aws/config, SSO, ...).
type Options struct {
	Region  string
	Profile string
	// Endpoint overrides every service's endpoint (tests point it at a fake; AWS_ENDPOINT_URL
	// does the same from the environment).
	Endpoint string
	// Credentials replaces the chain's credentials (tests).
	Credentials aws.CredentialsProvider
	// IMDS forces the EC2 instance metadata credentials on (true) or off (false); nil decides
	// by looking for EC2 (see onEC2).
	IMDS *bool
	// CredentialTimeout bounds the credential look-up; 0 means 15 seconds.
	CredentialTimeout time.Duration
}

// AuthError is a missing or rejected credential (exit 4).
type AuthError struct {
	Msg string
	Err error
}

func (e *AuthError) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}
func (e *AuthError) Unwrap() error { return e.Err }

// ErrNoRegion is a missing Region: a configuration problem, not an authentication one.
var ErrNoRegion = errors.New("no AWS Region: set target.aws.region in apgstack.yaml, pass --region, or set AWS_REGION (or a region in the profile's ~/.aws/config section)")

const noCredentials = "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or name a profile " +
	"with --profile, target.aws.profile or AWS_PROFILE (created by `aws configure` or `aws configure sso`; " +
	"for SSO run `aws sso login --profile NAME` first)"

// Load resolves the AWS configuration and checks, before anything else, that a Region and
// credentials are there. It does not call AWS; Identity does.
func Load(ctx context.Context, o Options) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if o.Region != "" {
		opts = append(opts, config.WithRegion(o.Region))
	}
	if o.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(o.Profile))
	}
	if o.Endpoint != "" {
		opts = append(opts, config.WithBaseEndpoint(o.Endpoint))
	}
	if o.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(o.Credentials))
	}
	// Off EC2 the instance metadata service does not answer and the SDK waits for it before
	// giving up, so a machine without credentials would hang for seconds: ask it only on EC2.
	useIMDS := onEC2()
	if o.IMDS != nil {
		useIMDS = *o.IMDS
	}
	if !useIMDS {
		opts = append(opts, config.WithEC2IMDSClientEnableState(imds.ClientDisabled))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		var pe config.SharedConfigProfileNotExistError
		if errors.As(err, &pe) {
			return cfg, &AuthError{Msg: fmt.Sprintf("AWS profile %q is not in ~/.aws/config or ~/.aws/credentials (set by --profile, target.aws.profile or AWS_PROFILE)", pe.Profile)}
		}
		return cfg, &AuthError{Msg: "load AWS configuration", Err: err}
	}
	if cfg.Region == "" {
		return cfg, ErrNoRegion
	}
	timeout := o.CredentialTimeout
	if timeout == 0 {
		timeout = 15 * time.Second
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if cfg.Credentials == nil {
		return cfg, &AuthError{Msg: noCredentials}
	}
	if _, err := cfg.Credentials.Retrieve(cctx); err != nil {
		if ctx.Err() != nil {
			return cfg, ctx.Err()
		}
		// The chain's last resort is the instance metadata service; its "no role" says nothing
		// more than "no credentials".
		if strings.Contains(err.Error(), "no EC2 IMDS role found") {
			return cfg, &AuthError{Msg: noCredentials}
		}
		return cfg, &AuthError{Msg: noCredentials, Err: shortCause(err)}
	}
	return cfg, nil
}

// shortCause keeps the last, most specific part of the SDK's long credential chain error.
func shortCause(err error) error {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && len(msg) > 200 {
		msg = msg[i+2:]
	}
	return errors.New(msg)
}

// onEC2 reports whether this looks like an EC2 instance (or the user asked for IMDS with
// AWS_EC2_METADATA_DISABLED=false).
func onEC2() bool {
	switch strings.ToLower(os.Getenv("AWS_EC2_METADATA_DISABLED")) {
	case "true":
		return false
	case "false":
		return true
	}
	for _, p := range []string{"/sys/devices/virtual/dmi/id/sys_vendor", "/sys/devices/virtual/dmi/id/bios_vendor", "/sys/hypervisor/uuid"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := strings.ToLower(string(b))
		if strings.Contains(s, "amazon") || strings.HasPrefix(s, "ec2") {
			return true
		}
	}
	return false
}

// Identity is who the credentials belong to.
type Identity struct {
	Account string
	Arn     string
}

// authCodes are the API error codes that mean the credentials were refused.
var authCodes = map[string]bool{
	"InvalidClientTokenId": true, "SignatureDoesNotMatch": true, "ExpiredToken": true, "ExpiredTokenException": true,
	"UnrecognizedClientException": true, "AccessDenied": true, "AccessDeniedException": true, "InvalidAccessKeyId": true,
	"AuthFailure": true, "RequestExpired": true, "IncompleteSignature": true, "MissingAuthenticationToken": true,
}

// IsAuthError reports whether err is an AWS answer that refuses the credentials.
func IsAuthError(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && authCodes[ae.ErrorCode()]
}

// Identity asks STS who we are: the first call to AWS, so that refused credentials fail early.
func (d *Deployer) Identity(ctx context.Context) (Identity, error) {
	out, err := d.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		if IsAuthError(err) {
			return Identity{}, &AuthError{Msg: "AWS refused the credentials (check the profile, or renew them: `aws sso login`, new access keys)", Err: err}
		}
		return Identity{}, fmt.Errorf("check credentials with STS: %w", err)
	}
	return Identity{Account: aws.ToString(out.Account), Arn: aws.ToString(out.Arn)}, nil
}
