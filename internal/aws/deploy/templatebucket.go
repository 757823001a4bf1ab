package deploy

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// The database template has outgrown CloudFormation's inline limit even as compact JSON (Database
// Insights, Serverless v2, AWS Backup). Without a configured bucket, apgstack keeps templates in a
// bucket of its own per account and Region, as the CloudFormation console does with its
// cf-templates-* buckets. New buckets are private and encrypted by S3's defaults (Block Public
// Access on, ACLs off, SSE-S3); the name holds the account id so that no one else owns it.

// TemplateBucketName is the bucket apgstack uses for templates when none is configured.
func TemplateBucketName(account, region string) string {
	return fmt.Sprintf("apgstack-templates-%s-%s", account, region)
}

// ensureTemplateBucket returns apgstack's template bucket, creating it when it does not exist.
func (d *Deployer) ensureTemplateBucket(ctx context.Context) (string, error) {
	id, err := d.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("find the account for the template bucket: %w", err)
	}
	name := TemplateBucketName(aws.ToString(id.Account), d.Region)
	if _, err := d.S3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(name), ExpectedBucketOwner: id.Account}); err == nil {
		return name, nil
	} else {
		var nf *s3types.NotFound
		if !errors.As(err, &nf) {
			return "", fmt.Errorf("check the template bucket %s: %w", name, err)
		}
	}
	in := &s3.CreateBucketInput{Bucket: aws.String(name)}
	if d.Region != "us-east-1" {
		in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(d.Region)}
	}
	if _, err := d.S3.CreateBucket(ctx, in); err != nil {
		return "", fmt.Errorf("create the template bucket %s: %w", name, err)
	}
	d.msg("created S3 bucket %s for templates over CloudFormation's inline limit (private and encrypted, S3's defaults); set database.bootstrapS3Bucket to use another", name)
	return name, nil
}
