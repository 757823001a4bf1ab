package deploy

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/configservice"
	"github.com/aws/aws-sdk-go-v2/service/guardduty"
	gdtypes "github.com/aws/aws-sdk-go-v2/service/guardduty/types"
)

// Warning is something the account should have that these stacks cannot create.
type Warning struct {
	Service string `json:"service"`
	Message string `json:"message"`
	// Fix is the command that turns it on.
	Fix string `json:"fix,omitempty"`
}

func (w Warning) String() string {
	if w.Fix == "" {
		return fmt.Sprintf("%s: %s", w.Service, w.Message)
	}
	return fmt.Sprintf("%s: %s; turn it on with: %s", w.Service, w.Message, w.Fix)
}

// Preflight checks what every account should have on in the Region — CloudTrail logging,
// AWS Config recording, GuardDuty — and returns warnings; a check that cannot be made (no
// permission) is a warning too, never an error.
func (d *Deployer) Preflight(ctx context.Context) []Warning {
	var out []Warning
	if w := d.checkCloudTrail(ctx); w != nil {
		out = append(out, *w)
	}
	if w := d.checkConfig(ctx); w != nil {
		out = append(out, *w)
	}
	if w := d.checkGuardDuty(ctx); w != nil {
		out = append(out, *w)
	}
	return out
}

func (d *Deployer) checkCloudTrail(ctx context.Context) *Warning {
	out, err := d.CloudTrail.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{IncludeShadowTrails: aws.Bool(true)})
	if err != nil {
		return &Warning{Service: "CloudTrail", Message: "could not check: " + short(err)}
	}
	var stopped string
	for _, t := range out.TrailList {
		if !aws.ToBool(t.IsMultiRegionTrail) && aws.ToString(t.HomeRegion) != d.Region {
			continue
		}
		st, err := d.CloudTrail.GetTrailStatus(ctx, &cloudtrail.GetTrailStatusInput{Name: aws.String(aws.ToString(t.TrailARN))})
		if err != nil {
			return &Warning{Service: "CloudTrail", Message: "could not check trail " + aws.ToString(t.Name) + ": " + short(err)}
		}
		if aws.ToBool(st.IsLogging) {
			return nil
		}
		stopped = aws.ToString(t.Name)
	}
	if stopped != "" {
		return &Warning{Service: "CloudTrail", Message: fmt.Sprintf("trail %s is not logging in %s", stopped, d.Region),
			Fix: fmt.Sprintf("aws cloudtrail start-logging --name %s --region %s", stopped, d.Region)}
	}
	return &Warning{Service: "CloudTrail", Message: "no trail records API activity in " + d.Region,
		Fix: fmt.Sprintf("aws cloudtrail create-trail --name apgstack-trail --s3-bucket-name <bucket with the CloudTrail bucket policy> --is-multi-region-trail --region %s && aws cloudtrail start-logging --name apgstack-trail --region %s", d.Region, d.Region)}
}

func (d *Deployer) checkConfig(ctx context.Context) *Warning {
	out, err := d.Config.DescribeConfigurationRecorderStatus(ctx, &configservice.DescribeConfigurationRecorderStatusInput{})
	if err != nil {
		return &Warning{Service: "AWS Config", Message: "could not check: " + short(err)}
	}
	var stopped string
	for _, r := range out.ConfigurationRecordersStatus {
		if r.Recording {
			return nil
		}
		stopped = aws.ToString(r.Name)
	}
	if stopped != "" {
		return &Warning{Service: "AWS Config", Message: fmt.Sprintf("configuration recorder %s is not recording in %s", stopped, d.Region),
			Fix: fmt.Sprintf("aws configservice start-configuration-recorder --configuration-recorder-name %s --region %s", stopped, d.Region)}
	}
	return &Warning{Service: "AWS Config", Message: "no configuration recorder in " + d.Region,
		Fix: fmt.Sprintf("aws iam create-service-linked-role --aws-service-name config.amazonaws.com; "+
			"aws configservice put-configuration-recorder --region %[1]s --configuration-recorder name=default,roleARN=arn:aws:iam::<account>:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig --recording-group allSupported=true,includeGlobalResourceTypes=true && "+
			"aws configservice put-delivery-channel --region %[1]s --delivery-channel name=default,s3BucketName=<bucket> && "+
			"aws configservice start-configuration-recorder --region %[1]s --configuration-recorder-name default", d.Region)}
}

func (d *Deployer) checkGuardDuty(ctx context.Context) *Warning {
	out, err := d.GuardDuty.ListDetectors(ctx, &guardduty.ListDetectorsInput{})
	if err != nil {
		return &Warning{Service: "GuardDuty", Message: "could not check: " + short(err)}
	}
	if len(out.DetectorIds) == 0 {
		return &Warning{Service: "GuardDuty", Message: "not enabled in " + d.Region, Fix: "aws guardduty create-detector --enable --region " + d.Region}
	}
	for _, id := range out.DetectorIds {
		det, err := d.GuardDuty.GetDetector(ctx, &guardduty.GetDetectorInput{DetectorId: aws.String(id)})
		if err != nil {
			return &Warning{Service: "GuardDuty", Message: "could not check detector " + id + ": " + short(err)}
		}
		if det.Status == gdtypes.DetectorStatusEnabled {
			return nil
		}
	}
	id := out.DetectorIds[0]
	return &Warning{Service: "GuardDuty", Message: fmt.Sprintf("detector %s is disabled in %s", id, d.Region),
		Fix: fmt.Sprintf("aws guardduty update-detector --detector-id %s --enable --region %s", id, d.Region)}
}

// short keeps an SDK error to its last part (the service's message).
func short(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, "api error "); i >= 0 {
		return msg[i+len("api error "):]
	}
	return msg
}
