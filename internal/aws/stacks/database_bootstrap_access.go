package stacks

import "github.com/apgstack/apgstack/cft"

// The bootstrap function's network access, as a customer-managed policy instead of the AWS
// managed AWSLambdaVPCAccessExecutionRole, which also grants logs:CreateLogGroup,
// CreateLogStream and PutLogEvents on every log group (the function writes only its own, through
// the role's WriteItsOwnLog statement). Lambda creates and deletes the function's network
// interfaces with these permissions: in the network stack's private subnets and Lambda security
// group, and only interfaces of that VPC.
const dbBootstrapVPCAccess = "DBBootStrapLambdaVPCAccessPolicy"

func ec2Arn(resource any) any {
	return cft.Join("", cft.Sub("arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:"), resource)
}

func addBootstrapVPCAccess(t *cft.Template) {
	vpc := ec2Arn(cft.Join("", "vpc/", cft.ImportSub("${ParentVPCStack}-VPC")))
	interfaces := ec2Arn("network-interface/*") // their ids are Lambda's to choose
	create := []any{interfaces, ec2Arn(cft.Join("", "security-group/", importLambdaSG()))}
	for i := range networkAZs {
		create = append(create, ec2Arn(cft.Join("", "subnet/", cft.Select(i, importPrivateSubnets()))))
	}
	t.AddResource(dbBootstrapVPCAccess, "AWS::IAM::ManagedPolicy", map[string]any{
		"Description": cft.Sub("${AWS::StackName}: the bootstrap function's network interfaces in the private subnets"),
		"PolicyDocument": iamPolicy(
			// These describe calls take no resource-level permissions.
			map[string]any{"Sid": "SeeNetworkInterfaces", "Effect": "Allow",
				"Action": []any{"ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"}, "Resource": "*"},
			map[string]any{"Sid": "CreateInterfacesInThePrivateSubnets", "Effect": "Allow",
				"Action": "ec2:CreateNetworkInterface", "Resource": create},
			map[string]any{"Sid": "ManageInterfacesOfTheVPC", "Effect": "Allow",
				"Action":    []any{"ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"},
				"Resource":  interfaces,
				"Condition": map[string]any{"ArnEquals": map[string]any{"ec2:Vpc": vpc}}},
		),
	}).Condition = condBootstrap
}
