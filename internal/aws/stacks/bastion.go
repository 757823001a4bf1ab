package stacks

import (
	"fmt"
	"regexp"
	"strconv"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/cft"
	"github.com/apgstack/apgstack/internal/aws/stacks/userdata"
)

// The bastion stack is the sample's VPC-SSH-Bastion brought up to date: the same parameters,
// outputs and exports; a launch template (launch configurations can no longer be created) with
// IMDSv2 and an encrypted root volume; the current Amazon Linux 2023 image through the public SSM
// parameter; a bootstrap written here instead of scripts downloaded from a third-party bucket;
// an encrypted topic and log group; a role that can do what the bootstrap does and no more.

// Logical ids: the sample's where the sample had the resource.
const (
	bastionKey         = "BastionKMSKey"
	bastionKeyAlias    = "BastionKMSKeyAlias"
	bastionASGRole     = "BastionAutoScalingServiceLinkedRole"
	bastionTopic       = "EC2SNSTopic"
	bastionLogGroup    = "BastionMainLogGroup"
	bastionMetric      = "SSHMetricFilter"
	bastionSG          = "BastionSecurityGroup"
	bastionRole        = "BastionHostRole"
	bastionProfile     = "BastionHostProfile"
	bastionEIP         = "EIP"
	bastionLT          = "BastionLaunchTemplate"
	bastionASG         = "BastionAutoScalingGroup"
	bastionCPUAlarm    = "CPUTooHighAlarm"
	bastionArchMapping = "BastionInstanceTypeArch"
)

// Conditions.
const (
	condAltInit        = "UseAlternativeInitialization"
	condImageOverride  = "UseOSImageOverride"
	condDefaultBanner  = "DefaultBanner"
	condS3Banner       = "UseS3Banner"
	condTCPForwarding  = "TCPForwardingEnabled"
	condX11Forwarding  = "X11ForwardingEnabled"
	bastionSignalWait  = "PT30M" // dnf upgrade, a reboot and the installs take 5 to 15 minutes
	bastionRootVolGiB  = 16      // the audit log of every execve needs room beyond the image's 8 GiB
	bastionMetricName  = "SSHCommandCount"
	bastionTemplateID  = "VPC-SSH-Bastion"
	bastionLogGroupFmt = "${AWS::StackName}-BastionMainLogGroup"
)

// bastionImageParameter is the public SSM parameter of the current Amazon Linux 2023 image; ${Arch}
// is x86_64 or arm64. The image is resolved when the stack is created or updated, so no image id
// is written anywhere.
const bastionImageParameter = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-${Arch}"

// Patterns tightened from the sample's only as far as the bootstrap needs: the values go into
// single-quoted shell strings, so they cannot hold a quote or white space.
const (
	bannerPattern        = `^default$|^s3://[^'\s]+$`
	altInitScriptPattern = `^$|^http[^'\s]*$`
)

func buildBastion(cfg apgstack.Config) (*Stack, error) {
	b := cfg.Bastion
	for _, v := range []struct{ field, value, pattern, allowed string }{
		{"bastion.banner", b.Banner, bannerPattern, `"default" or an s3:// location without quotes or spaces`},
		{"bastion.altInitScript", b.AltInitScript, altInitScriptPattern, "empty or an http(s) URL without quotes or spaces"},
	} {
		if !matches(v.pattern, v.value) {
			return nil, fmt.Errorf("%s %q: must be %s", v.field, v.value, v.allowed)
		}
	}
	t, err := bastionTemplate()
	if err != nil {
		return nil, err
	}
	return &Stack{
		Kind:     Bastion,
		Name:     b.StackName,
		Template: t,
		Parameters: []Param{
			{"ParentVPCStack", cfg.Network.StackName},
			{"RemoteAccessCIDR", b.RemoteAccessCIDR},
			{"KeyPairName", b.KeyPairName},
			{"BastionInstanceType", b.InstanceType},
			{"LogsRetentionInDays", strconv.Itoa(b.LogsRetentionInDays)},
			{"NotificationList", cfg.Environment.NotificationList},
			{"BastionTenancy", b.Tenancy},
			{"EnableBanner", boolString(b.EnableBanner)},
			{"BastionBanner", b.Banner},
			{"EnableTCPForwarding", boolString(b.EnableTCPForwarding)},
			{"EnableX11Forwarding", boolString(b.EnableX11Forwarding)},
			{"AltInitScript", b.AltInitScript},
			{"OSImageOverride", b.OSImageOverride},
		},
	}, nil
}

// bastionTemplate does not depend on the configuration: the configuration fills the parameters,
// so the template can be launched from the console as it is.
func bastionTemplate() (*cft.Template, error) {
	t := cft.New("Cloudformation template to create a highly available SSH bastion host: Amazon Linux 2023 in an Auto Scaling group of one with an Elastic IP, IMDSv2, an encrypted root volume, Session Manager, every command audited to CloudWatch Logs")
	addBastionParameters(t)
	addBastionConditions(t)
	addBastionKey(t)
	addBastionMonitoring(t)
	addBastionAccess(t)
	if err := addBastionInstance(t); err != nil {
		return nil, err
	}
	addBastionOutputs(t)
	return t, nil
}

func addBastionParameters(t *cft.Template) {
	t.Group("Network Configuration", "ParentVPCStack", "RemoteAccessCIDR")
	t.Group("Amazon EC2 Configuration", "KeyPairName", "BastionInstanceType", "LogsRetentionInDays", "NotificationList")
	t.Group("Linux Bastion Configuration", "BastionTenancy", "EnableBanner", "BastionBanner",
		"EnableTCPForwarding", "EnableX11Forwarding", "AltInitScript", "OSImageOverride")
	for param, label := range map[string]string{
		"BastionTenancy":      "Bastion Tenancy",
		"BastionBanner":       "Bastion Banner",
		"BastionInstanceType": "Bastion Instance Type",
		"EnableBanner":        "Enable Banner",
		"EnableTCPForwarding": "Enable TCP Forwarding",
		"EnableX11Forwarding": "Enable X11 Forwarding",
		"KeyPairName":         "Key Pair Name",
		"RemoteAccessCIDR":    "Allowed Bastion External Access CIDR",
		"AltInitScript":       "Custom Bootstrap Script",
		"OSImageOverride":     "AMI override",
		"NotificationList":    "SNS Notification Email",
	} {
		t.Label(param, label)
	}

	t.AddParameter(stackNameParam("ParentVPCStack", "Stack name of parent VPC stack based on VPC-3AZs yaml template. Refer Cloudformation dashboard in AWS Console to get this."))
	t.AddParameter(emailParam("NotificationList", "The Email notification list is used to configure a SNS topic for sending cloudwatch alarm notifications"))
	t.AddParameter(logRetentionParam("LogsRetentionInDays", 14))
	t.AddParameter(&cft.Parameter{Name: "BastionBanner", Type: "String", Default: "default", AllowedPattern: bannerPattern,
		Description:           "Banner text to display upon login. Leave at default or provide AWS S3 location for the file containing Banner text.",
		ConstraintDescription: "URL must begin with s3://"})
	t.AddParameter(&cft.Parameter{Name: "BastionTenancy", Type: "String", Default: "default", AllowedValues: anyStrings(apgstack.Tenancies),
		Description: "VPC Tenancy in which bastion host will be launched. Options: 'dedicated' or 'default'"})
	t.AddParameter(&cft.Parameter{Name: "BastionInstanceType", Type: "String", Default: apgstack.DefaultBastionInstanceType,
		AllowedValues: anyStrings(apgstack.BastionInstanceTypes),
		Description:   "Amazon EC2 instance type for the bastion instance (x86_64 or Graviton; the image follows the architecture)"})
	trueFalse := func(name, def, desc string) {
		t.AddParameter(&cft.Parameter{Name: name, Type: "String", Default: def, AllowedValues: []any{"true", "false"}, Description: desc})
	}
	trueFalse("EnableBanner", "true", "To include a banner to be displayed when connecting via SSH to the bastion, set this parameter to true")
	trueFalse("EnableTCPForwarding", "false", "Enable/Disable TCP Forwarding")
	trueFalse("EnableX11Forwarding", "false", "Enable/Disable X11 Forwarding")
	t.AddParameter(&cft.Parameter{Name: "KeyPairName", Type: "AWS::EC2::KeyPair::KeyName",
		Description: "Enter a Public/private key pair. If you do not have one in this AWS Region, create it before continuing"})
	t.AddParameter(&cft.Parameter{Name: "RemoteAccessCIDR", Type: "String", AllowedPattern: apgstack.CIDRPattern.String(),
		ConstraintDescription: "CIDR block parameter must be in the form x.x.x.x/x",
		Description:           "Allowed CIDR block in the x.x.x.x/x format for external SSH access to the bastion host"})
	t.AddParameter(&cft.Parameter{Name: "AltInitScript", Type: "String", Default: "", AllowedPattern: altInitScriptPattern,
		ConstraintDescription: "URL must begin with http",
		Description:           "Optional. Specify the http(s) URL of a custom script that the bootstrap downloads and runs as its last step"})
	t.AddParameter(&cft.Parameter{Name: "OSImageOverride", Type: "String", Default: "", AllowedPattern: apgstack.ImageIDPattern.String(),
		ConstraintDescription: "empty or an AMI id",
		Description:           "Optional. Specify a region specific image to use for the instance instead of the current Amazon Linux 2023"})
}

func anyStrings(list []string) []any {
	out := make([]any, len(list))
	for i, v := range list {
		out[i] = v
	}
	return out
}

func addBastionConditions(t *cft.Template) {
	t.AddCondition(condAltInit, cft.Not(cft.Equals(cft.Ref("AltInitScript"), "")))
	t.AddCondition(condImageOverride, cft.Not(cft.Equals(cft.Ref("OSImageOverride"), "")))
	t.AddCondition(condDefaultBanner, cft.Equals(cft.Ref("BastionBanner"), "default"))
	t.AddCondition(condS3Banner, cft.And(cft.Equals(cft.Ref("EnableBanner"), "true"), cft.Not(cft.Cond(condDefaultBanner))))
	t.AddCondition(condTCPForwarding, cft.Equals(cft.Ref("EnableTCPForwarding"), "true"))
	t.AddCondition(condX11Forwarding, cft.Equals(cft.Ref("EnableX11Forwarding"), "true"))

	// Instance type -> image architecture, for the SSM parameter of the image.
	arch := map[string]map[string]any{}
	for _, it := range apgstack.BastionInstanceTypes {
		arch[it] = map[string]any{"Arch": apgstack.BastionArch(it)}
	}
	t.AddMapping(bastionArchMapping, arch)
}

func bastionPolicy(statements ...any) map[string]any {
	return map[string]any{"Version": "2012-10-17", "Statement": statements}
}

func bastionAccountRoot() any { return cft.Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root") }

func bastionLogGroupArn(suffix string) any {
	return cft.Sub("arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:" + bastionLogGroupFmt + suffix)
}

// addBastionKey adds the customer-managed key of the topic and the log group, and the Auto
// Scaling service-linked role that publishes the group's notifications with it.
func addBastionKey(t *cft.Template) {
	// A service-linked role of our own (custom suffix): the key policy must name the role that
	// publishes, and KMS refuses a principal that does not exist yet — the account-wide
	// AWSServiceRoleForAutoScaling is missing on an account that never used Auto Scaling. The
	// suffix comes from the stack id so that two bastion stacks do not collide.
	t.AddResource(bastionASGRole, "AWS::IAM::ServiceLinkedRole", map[string]any{
		"AWSServiceName": "autoscaling.amazonaws.com",
		"CustomSuffix": cft.Join("-", "Bastion",
			cft.Select(0, cft.Split("-", cft.Select(2, cft.Split("/", cft.Ref(cft.StackId)))))),
		"Description": cft.Sub("apgstack ${AWS::StackName}: the bastion's Auto Scaling group"),
	})
	k := t.AddResource(bastionKey, "AWS::KMS::Key", map[string]any{
		"Description":       cft.Sub("apgstack ${AWS::StackName}: bastion notification topic and shell/audit log group"),
		"EnableKeyRotation": true,
		"KeyPolicy": bastionPolicy(
			// The account administers the key (and may delegate its use through IAM); without
			// this statement the key could become unmanageable.
			map[string]any{"Sid": "AccountAdministers", "Effect": "Allow", "Principal": map[string]any{"AWS": bastionAccountRoot()},
				"Action": "kms:*", "Resource": "*"},
			// CloudWatch Logs encrypts the bastion's log group; the encryption context pins the
			// grant to that group.
			map[string]any{"Sid": "CloudWatchLogsForTheBastionLogGroup", "Effect": "Allow",
				"Principal": map[string]any{"Service": cft.Sub("logs.${AWS::Region}.amazonaws.com")},
				"Action":    []any{"kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"},
				"Resource":  "*",
				"Condition": map[string]any{"ArnEquals": map[string]any{"kms:EncryptionContext:aws:logs:arn": bastionLogGroupArn("")}}},
			// Publishers to an encrypted topic need the key: the CPU alarm (CloudWatch) and the
			// group's launch/terminate error notifications (its service-linked role).
			map[string]any{"Sid": "CloudWatchAlarmsPublish", "Effect": "Allow",
				"Principal": map[string]any{"Service": "cloudwatch.amazonaws.com"},
				"Action":    []any{"kms:Decrypt", "kms:GenerateDataKey*"}, "Resource": "*"},
			map[string]any{"Sid": "AutoScalingNotificationsPublish", "Effect": "Allow",
				"Principal": map[string]any{"AWS": cft.SubVars(
					"arn:${AWS::Partition}:iam::${AWS::AccountId}:role/aws-service-role/autoscaling.amazonaws.com/${Role}",
					map[string]any{"Role": cft.Ref(bastionASGRole)})},
				"Action": []any{"kms:Decrypt", "kms:GenerateDataKey*"}, "Resource": "*"},
		),
		"Tags": []any{bastionNameTag(cft.Sub("${AWS::StackName}-bastion"))},
	})
	k.DependsOn = []string{bastionASGRole}
	t.AddResource(bastionKeyAlias, "AWS::KMS::Alias", map[string]any{
		"AliasName":   cft.Sub("alias/${AWS::StackName}-bastion"),
		"TargetKeyId": cft.Ref(bastionKey),
	})
}

func addBastionMonitoring(t *cft.Template) {
	t.AddResource(bastionTopic, "AWS::SNS::Topic", map[string]any{
		"KmsMasterKeyId": cft.Ref(bastionKey),
		"Subscription":   []any{map[string]any{"Endpoint": cft.Ref("NotificationList"), "Protocol": "email"}},
	})
	// Named, so that the key policy can name it before it exists.
	t.AddResource(bastionLogGroup, "AWS::Logs::LogGroup", map[string]any{
		"LogGroupName":    cft.Sub(bastionLogGroupFmt),
		"RetentionInDays": cft.Ref("LogsRetentionInDays"),
		"KmsKeyId":        cft.GetAtt(bastionKey, "Arn"),
	})
	// The sample's metric, name and namespace unchanged so that existing dashboards keep working:
	// sshd records a USER_LOGIN audit event for each login (the audit log is shipped).
	t.AddResource(bastionMetric, "AWS::Logs::MetricFilter", map[string]any{
		"LogGroupName":  cft.Ref(bastionLogGroup),
		"FilterPattern": "USER_LOGIN",
		"MetricTransformations": []any{map[string]any{
			"MetricName":      bastionMetricName,
			"MetricValue":     "1",
			"MetricNamespace": cft.Join("/", "AWSQuickStart", cft.Ref(cft.StackName)),
		}},
	})
	t.AddResource(bastionCPUAlarm, "AWS::CloudWatch::Alarm", map[string]any{
		"AlarmDescription":   "Average CPU utilization over last 10 minutes higher than 80%",
		"Namespace":          "AWS/EC2",
		"MetricName":         "CPUUtilization",
		"Statistic":          "Average",
		"Period":             600,
		"EvaluationPeriods":  1,
		"ComparisonOperator": "GreaterThanThreshold",
		"Threshold":          80,
		"AlarmActions":       []any{cft.Ref(bastionTopic)},
		"Dimensions":         []any{map[string]any{"Name": "AutoScalingGroupName", "Value": cft.Ref(bastionASG)}},
	})
}

func addBastionAccess(t *cft.Template) {
	remote := cft.Ref("RemoteAccessCIDR")
	vpc := cft.ImportSub("${ParentVPCStack}-CidrBlock")
	t.AddResource(bastionSG, "AWS::EC2::SecurityGroup", map[string]any{
		"GroupDescription": cft.Ref(cft.StackName),
		"VpcId":            cft.ImportSub("${ParentVPCStack}-VPC"),
		"SecurityGroupIngress": []any{
			map[string]any{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": remote, "Description": "SSH from the allowed CIDR"},
			map[string]any{"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "CidrIp": remote, "Description": "ICMP from the allowed CIDR"},
		},
		// Out: HTTPS to AWS APIs, Session Manager and the package repositories, HTTP for
		// repositories and AltInitScript, and any database port inside the VPC (DBPort is a
		// database-stack parameter, 1150-65535).
		"SecurityGroupEgress": []any{
			map[string]any{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0", "Description": "HTTPS"},
			map[string]any{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "CidrIp": "0.0.0.0/0", "Description": "HTTP"},
			map[string]any{"IpProtocol": "tcp", "FromPort": 1150, "ToPort": 65535, "CidrIp": vpc, "Description": "databases in the VPC"},
		},
		"Tags": []any{bastionNameTag(cft.Sub("${AWS::StackName}-BastionSecurityGroup"))},
	})

	eipArn := cft.Sub("arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:elastic-ip/${EIP.AllocationId}")
	ec2Arn := func(kind string) any {
		return cft.Sub("arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:" + kind + "/*")
	}
	statement := func(sid string, actions []any, resource any, extra map[string]any) map[string]any {
		s := map[string]any{"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resource}
		for k, v := range extra {
			s[k] = v
		}
		return s
	}
	policies := []any{
		map[string]any{"PolicyName": "bastion-cloudwatch-logs-policy", "PolicyDocument": bastionPolicy(
			// The CloudWatch agent writes its own streams into the bastion's group; it creates
			// neither groups nor retention policies.
			statement("ShipLogs", []any{"logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"},
				[]any{bastionLogGroupArn(""), bastionLogGroupArn(":*")}, nil),
			// PutMetricData has no resource-level permissions; the namespace condition keeps the
			// agent's memory and disk metrics in the stack's own namespace.
			statement("AgentMetrics", []any{"cloudwatch:PutMetricData"}, "*", map[string]any{
				"Condition": map[string]any{"StringEquals": map[string]any{
					"cloudwatch:namespace": cft.Sub(userdata.MetricNamespace("${AWS::StackName}"))}}}),
		)},
		map[string]any{"PolicyName": "bastion-eip-policy", "PolicyDocument": bastionPolicy(
			// Associating names the address, the instance and its network interface: the
			// address is this stack's only; the instance is whichever the group launched.
			statement("AssociateOwnAddress", []any{"ec2:AssociateAddress"},
				[]any{eipArn, ec2Arn("instance"), ec2Arn("network-interface")}, nil),
			// DescribeAddresses and DescribeInstances do not support resource-level
			// permissions: "*" is the only resource IAM accepts for them. The bootstrap uses them
			// to check that the address reached the instance.
			statement("DescribeSelf", []any{"ec2:DescribeAddresses", "ec2:DescribeInstances"}, "*", nil),
		)},
		cft.If(condS3Banner, map[string]any{"PolicyName": "bastion-banner-policy", "PolicyDocument": bastionPolicy(
			statement("ReadBanner", []any{"s3:GetObject"}, cft.SubVars("arn:${AWS::Partition}:s3:::${Object}",
				map[string]any{"Object": cft.Select(1, cft.Split("s3://", cft.Ref("BastionBanner")))}), nil),
		)}, cft.NoValue()),
	}
	t.AddResource(bastionRole, "AWS::IAM::Role", map[string]any{
		"Path": "/",
		"AssumeRolePolicyDocument": bastionPolicy(map[string]any{
			"Effect": "Allow", "Action": []any{"sts:AssumeRole"},
			"Principal": map[string]any{"Service": []any{cft.Sub("ec2.${AWS::URLSuffix}")}},
		}),
		// Session Manager (shell and port forwarding without SSH).
		"ManagedPolicyArns": []any{cft.Sub("arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore")},
		"Policies":          policies,
	})
	t.AddResource(bastionProfile, "AWS::IAM::InstanceProfile", map[string]any{
		"Path":  "/",
		"Roles": []any{cft.Ref(bastionRole)},
	})
	t.AddResource(bastionEIP, "AWS::EC2::EIP", map[string]any{
		"Domain": "vpc",
		"Tags":   []any{bastionNameTag(cft.Sub("${AWS::StackName}-BastionEIP"))},
	})
}

// bastionUserData is the Fn::Sub of the bootstrap script: parameters and attributes go in as
// references, the sshd switches as whole sshd_config lines chosen by conditions.
func bastionUserData() (any, error) {
	body, err := userdata.SubBody(userdata.Bastion{
		StackName: cft.StackName, Region: cft.Region, SignalResource: "SignalResource",
		LogGroup: bastionLogGroup, EIPAllocationID: bastionEIP + ".AllocationId",
		EnableBanner: "EnableBanner", BannerLocation: "BastionBanner",
		TCPForwardingLine: "TCPForwarding", X11ForwardingLine: "X11Forwarding",
		EnableX11Forwarding: "EnableX11Forwarding", AltInitScript: "AltInitScript",
	})
	if err != nil {
		return nil, err
	}
	return cft.Base64(cft.SubVars(body, map[string]any{
		"SignalResource": bastionASG,
		"TCPForwarding": cft.If(condTCPForwarding,
			userdata.SSHDLine("AllowTcpForwarding", true), userdata.SSHDLine("AllowTcpForwarding", false)),
		"X11Forwarding": cft.If(condX11Forwarding,
			userdata.SSHDLine("X11Forwarding", true), userdata.SSHDLine("X11Forwarding", false)),
	})), nil
}

func addBastionInstance(t *cft.Template) error {
	ud, err := bastionUserData()
	if err != nil {
		return err
	}
	image := cft.If(condImageOverride, cft.Ref("OSImageOverride"),
		cft.SubVars("{{resolve:ssm:"+bastionImageParameter+"}}", map[string]any{
			"Arch": cft.FindInMap(bastionArchMapping, cft.Ref("BastionInstanceType"), "Arch")}))
	t.AddResource(bastionLT, "AWS::EC2::LaunchTemplate", map[string]any{
		"LaunchTemplateData": map[string]any{
			"ImageId":            image,
			"InstanceType":       cft.Ref("BastionInstanceType"),
			"KeyName":            cft.Ref("KeyPairName"),
			"IamInstanceProfile": map[string]any{"Arn": cft.GetAtt(bastionProfile, "Arn")},
			"MetadataOptions": map[string]any{
				"HttpEndpoint": "enabled", "HttpTokens": "required", "HttpPutResponseHopLimit": 1,
			},
			// /dev/xvda is the root device of Amazon Linux 2023.
			"BlockDeviceMappings": []any{map[string]any{"DeviceName": "/dev/xvda", "Ebs": map[string]any{
				"VolumeType": "gp3", "VolumeSize": bastionRootVolGiB, "Encrypted": true, "DeleteOnTermination": true,
			}}},
			// A public address from launch, so that the instance reaches AWS and the package
			// repositories before the bootstrap moves the Elastic IP onto it.
			"NetworkInterfaces": []any{map[string]any{
				"DeviceIndex": 0, "AssociatePublicIpAddress": true, "DeleteOnTermination": true,
				"Groups": []any{cft.Ref(bastionSG)},
			}},
			"Placement": map[string]any{"Tenancy": cft.Ref("BastionTenancy")},
			"TagSpecifications": []any{map[string]any{"ResourceType": "volume",
				"Tags": []any{bastionNameTag(cft.Sub("${AWS::StackName}-BastionHost"))}}},
			"UserData": ud,
		},
	})
	asg := t.AddResource(bastionASG, "AWS::AutoScaling::AutoScalingGroup", map[string]any{
		"LaunchTemplate": map[string]any{
			"LaunchTemplateId": cft.Ref(bastionLT),
			"Version":          cft.GetAtt(bastionLT, "LatestVersionNumber"),
		},
		"ServiceLinkedRoleARN": cft.SubVars(
			"arn:${AWS::Partition}:iam::${AWS::AccountId}:role/aws-service-role/autoscaling.amazonaws.com/${Role}",
			map[string]any{"Role": cft.Ref(bastionASGRole)}),
		"MinSize":         "1",
		"MaxSize":         "1",
		"DesiredCapacity": "1",
		"VPCZoneIdentifier": []any{
			cft.ImportSub("${ParentVPCStack}-SubnetAPublic"),
			cft.ImportSub("${ParentVPCStack}-SubnetBPublic"),
			cft.ImportSub("${ParentVPCStack}-SubnetCPublic"),
		},
		"Tags": []any{map[string]any{
			"Key": "Name",
			"Value": cft.SubVars("${AWS::StackName}-BastionHost-${CidrBlock}",
				map[string]any{"CidrBlock": cft.ImportSub("${ParentVPCStack}-CidrBlock")}),
			"PropagateAtLaunch": true,
		}},
		"NotificationConfigurations": []any{map[string]any{
			"TopicARN": cft.Ref(bastionTopic),
			// Every scaling event, not only errors: a replaced bastion is news to its admins
			// (cdk-nag AwsSolutions-AS3).
			"NotificationTypes": []any{
				"autoscaling:EC2_INSTANCE_LAUNCH",
				"autoscaling:EC2_INSTANCE_LAUNCH_ERROR",
				"autoscaling:EC2_INSTANCE_TERMINATE",
				"autoscaling:EC2_INSTANCE_TERMINATE_ERROR",
			},
		}},
	})
	// The group is complete when its instance signals the end of the bootstrap (after the
	// first-boot patch reboot, if any).
	asg.CreationPolicy = map[string]any{"ResourceSignal": map[string]any{"Count": 1, "Timeout": bastionSignalWait}}
	asg.UpdatePolicy = map[string]any{"AutoScalingRollingUpdate": map[string]any{
		"MinInstancesInService": 0,
		"MaxBatchSize":          1,
		"WaitOnResourceSignals": true,
		"PauseTime":             bastionSignalWait,
		"SuspendProcesses": []any{"HealthCheck", "ReplaceUnhealthy", "AZRebalance", "AlarmNotification",
			"ScheduledActions"},
	}}
	return nil
}

// bastionInstanceLookup is a shell snippet that finds the group's instance: CloudFormation does
// not know it, and it changes whenever the group replaces it.
const bastionInstanceLookup = `"$(aws autoscaling describe-auto-scaling-groups --region ${AWS::Region} --auto-scaling-group-names ${BastionAutoScalingGroup} --query 'AutoScalingGroups[0].Instances[0].InstanceId' --output text)"`

func addBastionOutputs(t *cft.Template) {
	export := func(name string) any { return cft.Sub("${AWS::StackName}-" + name) }
	t.AddOutput(&cft.Output{Name: "TemplateID", Description: "Template ID", Value: bastionTemplateID})
	t.AddOutput(&cft.Output{Name: "BastionAutoScalingGroup", Description: "Auto Scaling Group Reference ID",
		Value: cft.Ref(bastionASG), Export: export("BastionAutoScalingGroup")})
	t.AddOutput(&cft.Output{Name: "EIP", Description: "The public IP address of the SSH bastion host/instance",
		Value: cft.Ref(bastionEIP), Export: export("EIP")})
	t.AddOutput(&cft.Output{Name: OutputSSHCommand, Description: "SSH command line",
		Value: cft.Join("", `ssh -i "`, cft.Ref("KeyPairName"), `.pem" `, "ec2-user@", cft.Ref(bastionEIP))})
	t.AddOutput(&cft.Output{Name: "CloudWatchLogs", Description: "CloudWatch Logs GroupName. Your SSH logs will be stored here.",
		Value: cft.Ref(bastionLogGroup), Export: export("CloudWatchLogs")})
	t.AddOutput(&cft.Output{Name: "BastionSecurityGroupID",
		Description: "Use this Security Group to reference incoming traffic from the SSH bastion host/instance",
		Value:       cft.Ref(bastionSG), Export: export("BastionSecurityGroupID")})
	t.AddOutput(&cft.Output{Name: "SessionManagerCommand",
		Description: "A shell on the bastion through Session Manager, without SSH (needs the AWS CLI and its Session Manager plugin)",
		Value:       cft.Sub("aws ssm start-session --region ${AWS::Region} --target " + bastionInstanceLookup)})
	t.AddOutput(&cft.Output{Name: "SessionManagerPortForwardCommand",
		Description: "Forwards localhost:5432 to the cluster through the bastion with Session Manager, without opening SSH: replace <cluster-endpoint> by the database stack's ClusterEndpoint output (and 5432 by its DBPort)",
		Value: cft.Sub("aws ssm start-session --region ${AWS::Region} --target " + bastionInstanceLookup +
			" --document-name AWS-StartPortForwardingSessionToRemoteHost --parameters 'host=<cluster-endpoint>,portNumber=5432,localPortNumber=5432'")})
}

// matches reports whether value matches a parameter's AllowedPattern (ours carry their anchors).
func matches(pattern, value string) bool { return regexp.MustCompile(pattern).MatchString(value) }

func bastionNameTag(v any) map[string]any { return cft.Tag("Name", v) }
