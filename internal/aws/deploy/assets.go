package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// The assets bucket: like `cdk bootstrap`'s staging bucket and SAM's managed bucket, one bucket
// per account and Region holds what `up` uploads — templates over CloudFormation's inline limit
// and the bootstrap Lambda's zip — so that `up` needs no bucket from the user.

// AssetsBucketName is the assets bucket of an account and Region (at most 16+12+1+14 = 43
// characters, within S3's 63).
func AssetsBucketName(account, region string) string {
	return "apgstack-assets-" + account + "-" + region
}

// assetsNoncurrentDays is how long a replaced template or zip is kept.
const assetsNoncurrentDays = 30

// AssetsBucket is the outcome of EnsureAssetsBucket.
type AssetsBucket struct {
	Name    string `json:"name"`
	Created bool   `json:"created"`
	// Missing is true on a dry run when the bucket does not exist yet (up would create it).
	Missing bool `json:"missing,omitempty"`
}

// EnsureAssetsBucket reuses the account's assets bucket in the Deployer's Region, or creates it
// after confirmation: encrypted (SSE-S3), versioned, public access blocked, owner-enforced,
// TLS-only by policy, with old versions expiring after 30 days. A dry run creates nothing. The
// bucket name is checked against the account (ExpectedBucketOwner), so a bucket of that name in
// another account is never used.
func (d *Deployer) EnsureAssetsBucket(ctx context.Context, dryRun bool) (AssetsBucket, error) {
	id, err := d.Identity(ctx)
	if err != nil {
		return AssetsBucket{}, err
	}
	b := AssetsBucket{Name: AssetsBucketName(id.Account, d.Region)}
	_, err = d.S3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(b.Name), ExpectedBucketOwner: aws.String(id.Account)})
	switch status := httpStatus(err); {
	case err == nil:
		return b, nil
	case status == http.StatusForbidden:
		return b, fmt.Errorf("assets bucket %s exists but does not belong to account %s (or is not readable): remove or rename it, or set database.bootstrapS3Bucket to a bucket of yours", b.Name, id.Account)
	case status != http.StatusNotFound:
		return b, fmt.Errorf("look for the assets bucket %s: %w", b.Name, err)
	}
	if dryRun {
		d.msg("assets bucket %s: would be created in %s", b.Name, d.Region)
		b.Missing = true
		return b, nil
	}
	if err := d.confirm(fmt.Sprintf("Create the assets bucket %s in %s for templates and the bootstrap Lambda's zip (encrypted, versioned, public access blocked, TLS only, old versions expire after %d days)?", b.Name, d.Region, assetsNoncurrentDays)); err != nil {
		return b, err
	}
	if err := d.createAssetsBucket(ctx, b.Name, id.Account); err != nil {
		return b, err
	}
	b.Created = true
	d.msg("assets bucket %s: created", b.Name)
	return b, nil
}

func (d *Deployer) createAssetsBucket(ctx context.Context, name, account string) error {
	in := &s3.CreateBucketInput{Bucket: aws.String(name), ObjectOwnership: s3types.ObjectOwnershipBucketOwnerEnforced}
	// us-east-1 is the one Region that takes no location constraint.
	if d.Region != "us-east-1" {
		in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(d.Region)}
	}
	if _, err := d.S3.CreateBucket(ctx, in); err != nil {
		var owned *s3types.BucketAlreadyOwnedByYou
		if !errors.As(err, &owned) {
			return fmt.Errorf("create the assets bucket %s: %w", name, err)
		}
	}
	policy, err := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{
		"Sid": "TLSOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
		"Resource":  []any{"arn:aws:s3:::" + name, "arn:aws:s3:::" + name + "/*"},
		"Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
	}}})
	if err != nil {
		return err
	}
	owner := aws.String(account)
	steps := []struct {
		what string
		do   func() error
	}{
		{"block public access", func() error {
			_, err := d.S3.PutPublicAccessBlock(ctx, &s3.PutPublicAccessBlockInput{Bucket: aws.String(name), ExpectedBucketOwner: owner,
				PublicAccessBlockConfiguration: &s3types.PublicAccessBlockConfiguration{BlockPublicAcls: aws.Bool(true),
					BlockPublicPolicy: aws.Bool(true), IgnorePublicAcls: aws.Bool(true), RestrictPublicBuckets: aws.Bool(true)}})
			return err
		}},
		{"encrypt", func() error {
			_, err := d.S3.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: aws.String(name), ExpectedBucketOwner: owner,
				ServerSideEncryptionConfiguration: &s3types.ServerSideEncryptionConfiguration{Rules: []s3types.ServerSideEncryptionRule{{
					ApplyServerSideEncryptionByDefault: &s3types.ServerSideEncryptionByDefault{SSEAlgorithm: s3types.ServerSideEncryptionAes256},
					BucketKeyEnabled:                   aws.Bool(true)}}}})
			return err
		}},
		{"turn on versioning", func() error {
			_, err := d.S3.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(name), ExpectedBucketOwner: owner,
				VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}})
			return err
		}},
		{"require TLS", func() error {
			_, err := d.S3.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(name), ExpectedBucketOwner: owner, Policy: aws.String(string(policy))})
			return err
		}},
		{"expire old versions", func() error {
			_, err := d.S3.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: aws.String(name), ExpectedBucketOwner: owner,
				LifecycleConfiguration: &s3types.BucketLifecycleConfiguration{Rules: []s3types.LifecycleRule{{
					ID: aws.String("expire-old-versions"), Status: s3types.ExpirationStatusEnabled,
					Filter:                         &s3types.LifecycleRuleFilter{Prefix: aws.String("")},
					NoncurrentVersionExpiration:    &s3types.NoncurrentVersionExpiration{NoncurrentDays: aws.Int32(assetsNoncurrentDays)},
					AbortIncompleteMultipartUpload: &s3types.AbortIncompleteMultipartUpload{DaysAfterInitiation: aws.Int32(7)},
				}}}})
			return err
		}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			return fmt.Errorf("assets bucket %s: %s: %w (finish its set-up by hand, or delete the bucket and run `apgstack up` again)", name, s.what, err)
		}
	}
	return nil
}

// httpStatus is the HTTP status of an AWS error, or 0.
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
