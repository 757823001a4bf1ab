package stacks

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/cft"
)

// The network stack is the sample's VPC-3AZs brought up to date: the same parameter, blocks,
// names and exports, with real network ACLs, VPC flow logs, and a Secrets Manager endpoint with
// its own security group.

// vpcCIDR is the VPC block as a template value; the ACL rules use it instead of GetAtt VPC.CidrBlock
// so that a rule's block can be resolved from parameters alone (and checked in tests).
var vpcCIDR = cft.Sub("10.${ClassB}.0.0/16")

// AZ letters and the third octet of each AZ's public and private /20 (the sample's blocks, kept
// so that existing networks keep their addresses).
var networkAZs = []struct {
	Letter          string
	Public, Private int
}{
	{"A", 0, 16},
	{"B", 32, 48},
	{"C", 64, 80},
}

// Ports the ACLs name.
const (
	portSSH   = 22
	portHTTP  = 80
	portHTTPS = 443
	// The range AWS recommends for return traffic: NAT gateways and Lambda use 1024-65535.
	portRDP       = 3389
	ephemeralLow  = 1024
	ephemeralHigh = 65535
	dbPortLow     = 1150 // DBPort's lower bound in the database stack (1150-65535)

	protoICMP = 1
	protoTCP  = 6
)

// aclRule is one network ACL entry with the reason it exists. The rules are written once, here:
// the template's entries and the ACL's Metadata (what the tier admits) are both generated from
// them, so the documentation cannot drift from the rules.
type aclRule struct {
	Name     string // logical id suffix
	Number   int
	Egress   bool
	Protocol int
	From, To int // port range (TCP)
	ICMPType int // ICMP only
	ICMPCode int
	CIDR     any    // template value of the block
	Peer     string // the block in words, for the Metadata
	Why      string
	// Condition, when set, names the template condition the entry exists under.
	Condition string
}

const (
	peerAnywhere = "anywhere (0.0.0.0/0)"
	peerVPC      = "the VPC (10.ClassB.0.0/16)"
	peerRemote   = "RemoteAccessCIDR"
)

// condRemoteAccess holds when the network stack's RemoteAccessCIDR is set; without it the public
// ACL admits no SSH or ping (Session Manager still reaches the bastion).
const condRemoteAccess = "HasRemoteAccessCIDR"

// publicACLRules: the public tier holds the bastion and the NAT gateways.
var publicACLRules = []aclRule{
	{Name: "SSH", Number: 100, Protocol: protoTCP, From: portSSH, To: portSSH, CIDR: cft.Ref("RemoteAccessCIDR"), Peer: peerRemote,
		Why: "SSH to the bastion (its security group narrows further)", Condition: condRemoteAccess},
	{Name: "HTTPSFromVPC", Number: 110, Protocol: protoTCP, From: portHTTPS, To: portHTTPS, CIDR: vpcCIDR, Peer: peerVPC,
		Why: "HTTPS from the private tier to the NAT gateways"},
	{Name: "HTTPFromVPC", Number: 120, Protocol: protoTCP, From: portHTTP, To: portHTTP, CIDR: vpcCIDR, Peer: peerVPC,
		Why: "HTTP from the private tier to the NAT gateways (package repositories)"},
	// Return traffic comes from anywhere, so the ephemeral range skips RDP (3389): no ACL admits
	// 22 or 3389 from 0.0.0.0/0 (Security Hub EC2.21).
	{Name: "Ephemeral", Number: 130, Protocol: protoTCP, From: ephemeralLow, To: portRDP - 1, CIDR: "0.0.0.0/0", Peer: peerAnywhere,
		Why: "return traffic: replies to the NAT gateways and to the bastion's own connections, and from the private tier"},
	{Name: "EphemeralAboveRDP", Number: 135, Protocol: protoTCP, From: portRDP + 1, To: ephemeralHigh, CIDR: "0.0.0.0/0", Peer: peerAnywhere,
		Why: "return traffic, the rest of the ephemeral range"},
	{Name: "PathMTU", Number: 140, Protocol: protoICMP, ICMPType: 3, ICMPCode: 4, CIDR: "0.0.0.0/0", Peer: peerAnywhere,
		Why: "ICMP fragmentation-needed, so that path MTU discovery works"},
	{Name: "Ping", Number: 150, Protocol: protoICMP, ICMPType: 8, ICMPCode: -1, CIDR: cft.Ref("RemoteAccessCIDR"), Peer: peerRemote,
		Why: "ping from the admins, as the bastion's security group allows", Condition: condRemoteAccess},

	{Name: "HTTPS", Number: 100, Egress: true, Protocol: protoTCP, From: portHTTPS, To: portHTTPS, CIDR: "0.0.0.0/0", Peer: peerAnywhere,
		Why: "HTTPS to AWS APIs and the internet (the bastion's and, through the NAT gateways, the private tier's)"},
	{Name: "HTTP", Number: 110, Egress: true, Protocol: protoTCP, From: portHTTP, To: portHTTP, CIDR: "0.0.0.0/0", Peer: peerAnywhere,
		Why: "HTTP to package repositories"},
	{Name: "VPC", Number: 120, Egress: true, Protocol: protoTCP, From: ephemeralLow, To: ephemeralHigh, CIDR: vpcCIDR, Peer: peerVPC,
		Why: "PostgreSQL (any DBPort 1150-65535) to the private tier, and replies from the NAT gateways to the private tier"},
	{Name: "SSHReplies", Number: 130, Egress: true, Protocol: protoTCP, From: ephemeralLow, To: ephemeralHigh, CIDR: cft.Ref("RemoteAccessCIDR"), Peer: peerRemote,
		Why: "replies of the bastion's SSH server to its clients", Condition: condRemoteAccess},
	{Name: "PathMTU", Number: 140, Egress: true, Protocol: protoICMP, ICMPType: 3, ICMPCode: 4, CIDR: "0.0.0.0/0", Peer: peerAnywhere,
		Why: "ICMP fragmentation-needed, so that path MTU discovery works"},
	{Name: "PingReplies", Number: 150, Egress: true, Protocol: protoICMP, ICMPType: 0, ICMPCode: -1, CIDR: cft.Ref("RemoteAccessCIDR"), Peer: peerRemote,
		Why: "echo replies to the admins' pings", Condition: condRemoteAccess},
}

// privateACLRules: the private tier holds the database, the in-VPC Lambdas and the Secrets
// Manager endpoint; nothing in it has a public address or a route from the internet.
var privateACLRules = []aclRule{
	{Name: "DBPorts", Number: 100, Protocol: protoTCP, From: dbPortLow, To: ephemeralHigh, CIDR: vpcCIDR, Peer: peerVPC,
		Why: "PostgreSQL from the bastion and the Lambdas: DBPort is a database-stack parameter (1150-65535) and several database stacks share this network"},
	{Name: "HTTPSFromVPC", Number: 110, Protocol: protoTCP, From: portHTTPS, To: portHTTPS, CIDR: vpcCIDR, Peer: peerVPC,
		Why: "HTTPS to the Secrets Manager interface endpoint"},
	{Name: "Ephemeral", Number: 120, Protocol: protoTCP, From: ephemeralLow, To: portRDP - 1, CIDR: "0.0.0.0/0", Peer: peerAnywhere,
		Why: "return traffic through the NAT gateways and the S3 gateway endpoint (its source is an internet or S3 address)"},
	{Name: "EphemeralAboveRDP", Number: 125, Protocol: protoTCP, From: portRDP + 1, To: ephemeralHigh, CIDR: "0.0.0.0/0", Peer: peerAnywhere,
		Why: "return traffic, the rest of the ephemeral range"},
	{Name: "PathMTU", Number: 130, Protocol: protoICMP, ICMPType: 3, ICMPCode: 4, CIDR: "0.0.0.0/0", Peer: peerAnywhere,
		Why: "ICMP fragmentation-needed, so that path MTU discovery works"},

	{Name: "HTTPS", Number: 100, Egress: true, Protocol: protoTCP, From: portHTTPS, To: portHTTPS, CIDR: "0.0.0.0/0", Peer: peerAnywhere,
		Why: "HTTPS to the endpoints, S3 and, through the NAT gateways, AWS APIs"},
	{Name: "HTTP", Number: 110, Egress: true, Protocol: protoTCP, From: portHTTP, To: portHTTP, CIDR: "0.0.0.0/0", Peer: peerAnywhere,
		Why: "HTTP through the NAT gateways (package repositories)"},
	{Name: "VPC", Number: 120, Egress: true, Protocol: protoTCP, From: ephemeralLow, To: ephemeralHigh, CIDR: vpcCIDR, Peer: peerVPC,
		Why: "replies to clients in the VPC, and the Lambdas' connections to the database port"},
	{Name: "PathMTU", Number: 130, Egress: true, Protocol: protoICMP, ICMPType: 3, ICMPCode: 4, CIDR: "0.0.0.0/0", Peer: peerAnywhere,
		Why: "ICMP fragmentation-needed, so that path MTU discovery works"},
}

// describe renders a rule for the ACL's Metadata.
func (r aclRule) describe() string {
	dir := "from"
	if r.Egress {
		dir = "to"
	}
	what := fmt.Sprintf("TCP %d-%d", r.From, r.To)
	if r.From == r.To {
		what = "TCP " + strconv.Itoa(r.From)
	}
	if r.Protocol == protoICMP {
		what = fmt.Sprintf("ICMP type %d code %d", r.ICMPType, r.ICMPCode)
	}
	if r.Condition != "" {
		what += " (when " + r.Peer + " is set)"
	}
	return fmt.Sprintf("%d allow %s %s %s: %s", r.Number, what, dir, r.Peer, r.Why)
}

func (r aclRule) properties(acl string) map[string]any {
	p := map[string]any{
		"NetworkAclId": cft.Ref(acl),
		"RuleNumber":   r.Number,
		"Protocol":     r.Protocol,
		"RuleAction":   "allow",
		"Egress":       r.Egress,
		"CidrBlock":    r.CIDR,
	}
	if r.Protocol == protoICMP {
		p["Icmp"] = map[string]any{"Type": r.ICMPType, "Code": r.ICMPCode}
	} else {
		p["PortRange"] = map[string]any{"From": r.From, "To": r.To}
	}
	return p
}

// aclMetadata writes down what a tier admits, for whoever reads the template.
func aclMetadata(tier string, rules []aclRule) map[string]any {
	var in, out []any
	for _, r := range rules {
		if r.Egress {
			out = append(out, r.describe())
		} else {
			in = append(in, r.describe())
		}
	}
	return map[string]any{"apgstack::Admits": map[string]any{
		"Tier":     tier,
		"Inbound":  in,
		"Outbound": out,
		"Default":  "everything else is denied (rule *); network ACLs are stateless, so each allowed flow has a rule for its replies, and the security groups narrow each flow to its peers",
	}}
}

func nameJoin(parts ...any) any {
	return cft.Join("_", append([]any{vpcCIDR}, parts...)...)
}

func az(i int) any { return cft.Select(i, cft.GetAZs("")) }

func nameTag(v any) map[string]any { return cft.Tag("Name", v) }

func buildNetwork(cfg apgstack.Config) (*Stack, error) {
	t := networkTemplate()
	return &Stack{
		Kind:     Network,
		Name:     cfg.Network.StackName,
		Template: t,
		Parameters: []Param{
			{"ClassB", strconv.Itoa(cfg.Network.ClassB)},
			{"RemoteAccessCIDR", cfg.Bastion.RemoteAccessCIDR},
			{"FlowLogsRetentionInDays", strconv.Itoa(cfg.Network.FlowLogsRetentionInDays)},
		},
	}, nil
}

// networkTemplate does not depend on the configuration: the configuration only fills the
// parameters, so the template can be launched from the console as it is.
func networkTemplate() *cft.Template {
	t := cft.New("Cloudformation Template to create a VPC with public and private subnets in 3 AZs, with network ACLs on both tiers, NAT gateways, S3 and Secrets Manager endpoints and VPC flow logs")
	t.Group("VPC Parameters", "ClassB")
	t.Label("ClassB", "ClassB 2nd Octet")
	t.Group("Security Parameters", "RemoteAccessCIDR", "FlowLogsRetentionInDays")
	t.Label("RemoteAccessCIDR", "Allowed SSH source (public network ACL)")
	t.Label("FlowLogsRetentionInDays", "VPC flow logs retention (days)")

	t.AddParameter(&cft.Parameter{Name: "ClassB", Type: "Number", Default: 0,
		Description:           "Specify the 2nd Octet of IPv4 CIDR block for the VPC (10.XXX.0.0/16) in the range [0-255]",
		ConstraintDescription: "Must be in the range [0-255]",
		MinValue:              cft.Float(0), MaxValue: cft.Float(255)})
	// Empty by default, so that a stack created from the sample (which had no such parameter)
	// updates with its previous parameters; empty admits no SSH, never SSH from the world.
	t.AddParameter(&cft.Parameter{Name: "RemoteAccessCIDR", Type: "String", Default: "",
		Description:           "CIDR block the public network ACL admits to SSH (port 22) and ping: give the bastion stack's RemoteAccessCIDR (apgstack passes the same value to both); empty admits no SSH (Session Manager still reaches the bastion)",
		AllowedPattern:        "^$|" + apgstack.CIDRPattern.String(),
		ConstraintDescription: "empty, or a CIDR block in the form x.x.x.x/x",
		MaxLength:             cft.Int(18)})
	t.AddCondition(condRemoteAccess, cft.Not(cft.Equals(cft.Ref("RemoteAccessCIDR"), "")))
	t.AddParameter(logRetentionParam("FlowLogsRetentionInDays", apgstack.Default().Network.FlowLogsRetentionInDays))

	t.AddResource("VPC", "AWS::EC2::VPC", map[string]any{
		"CidrBlock":          vpcCIDR,
		"EnableDnsSupport":   true,
		"EnableDnsHostnames": true,
		"InstanceTenancy":    "default",
		"Tags":               []any{nameTag(cft.Sub("${AWS::StackName}-VPC"))},
	})
	t.AddResource("InternetGateway", "AWS::EC2::InternetGateway", map[string]any{
		"Tags": []any{nameTag(vpcCIDR)},
	})
	t.AddResource("VPCGatewayAttachment", "AWS::EC2::VPCGatewayAttachment", map[string]any{
		"VpcId":             cft.Ref("VPC"),
		"InternetGatewayId": cft.Ref("InternetGateway"),
	})
	for _, z := range networkAZs {
		eip := t.AddResource("NATEIP"+z.Letter, "AWS::EC2::EIP", map[string]any{"Domain": "vpc"})
		eip.DependsOn = []string{"VPCGatewayAttachment"}
	}

	for i, z := range networkAZs {
		t.AddResource("Subnet"+z.Letter+"Public", "AWS::EC2::Subnet", map[string]any{
			"AvailabilityZone":    az(i),
			"CidrBlock":           cft.Sub(fmt.Sprintf("10.${ClassB}.%d.0/20", z.Public)),
			"MapPublicIpOnLaunch": true,
			"VpcId":               cft.Ref("VPC"),
			"Tags":                []any{nameTag(nameJoin(az(i), "Public")), cft.Tag("Reach", "public")},
		})
		t.AddResource("Subnet"+z.Letter+"Private", "AWS::EC2::Subnet", map[string]any{
			"AvailabilityZone": az(i),
			"CidrBlock":        cft.Sub(fmt.Sprintf("10.${ClassB}.%d.0/20", z.Private)),
			"VpcId":            cft.Ref("VPC"),
			"Tags":             []any{nameTag(nameJoin(az(i), "Private")), cft.Tag("Reach", "private")},
		})
	}

	t.AddResource("RouteTablePublic", "AWS::EC2::RouteTable", map[string]any{
		"VpcId": cft.Ref("VPC"),
		"Tags":  []any{nameTag(nameJoin("Public"))},
	})
	for i, z := range networkAZs {
		t.AddResource("RouteTable"+z.Letter+"Private", "AWS::EC2::RouteTable", map[string]any{
			"VpcId": cft.Ref("VPC"),
			"Tags":  []any{nameTag(nameJoin(az(i), "Private"))},
		})
	}
	for _, z := range networkAZs {
		t.AddResource("RouteTableAssociation"+z.Letter+"Public", "AWS::EC2::SubnetRouteTableAssociation", map[string]any{
			"SubnetId":     cft.Ref("Subnet" + z.Letter + "Public"),
			"RouteTableId": cft.Ref("RouteTablePublic"),
		})
		t.AddResource("RouteTableAssociation"+z.Letter+"Private", "AWS::EC2::SubnetRouteTableAssociation", map[string]any{
			"SubnetId":     cft.Ref("Subnet" + z.Letter + "Private"),
			"RouteTableId": cft.Ref("RouteTable" + z.Letter + "Private"),
		})
	}
	igwRoute := t.AddResource("RouteTablePublicInternetRoute", "AWS::EC2::Route", map[string]any{
		"RouteTableId":         cft.Ref("RouteTablePublic"),
		"DestinationCidrBlock": "0.0.0.0/0",
		"GatewayId":            cft.Ref("InternetGateway"),
	})
	igwRoute.DependsOn = []string{"VPCGatewayAttachment"}

	addNetworkACL(t, "Public", publicACLRules)
	addNetworkACL(t, "Private", privateACLRules)

	for i, z := range networkAZs {
		nat := t.AddResource("NATGateway"+z.Letter, "AWS::EC2::NatGateway", map[string]any{
			"AllocationId": cft.GetAtt("NATEIP"+z.Letter, "AllocationId"),
			"SubnetId":     cft.Ref("Subnet" + z.Letter + "Public"),
			"Tags":         []any{nameTag(nameJoin(az(i), "NGW"))},
		})
		// The sample waited for the VPC only; a NAT gateway needs the internet gateway attached.
		nat.DependsOn = []string{"VPCGatewayAttachment"}
	}
	for _, z := range networkAZs {
		t.AddResource("RouteTablePrivate"+z.Letter+"NATRoute", "AWS::EC2::Route", map[string]any{
			"RouteTableId":         cft.Ref("RouteTable" + z.Letter + "Private"),
			"DestinationCidrBlock": "0.0.0.0/0",
			"NatGatewayId":         cft.Ref("NATGateway" + z.Letter),
		})
	}

	t.AddResource("S3VPCEndpoint", "AWS::EC2::VPCEndpoint", map[string]any{
		"VpcEndpointType": "Gateway",
		// The sample's policy: S3 access is governed by IAM and bucket policies; the endpoint only
		// keeps the traffic off the NAT gateways.
		"PolicyDocument": map[string]any{
			"Version": "2012-10-17",
			"Statement": []any{map[string]any{
				"Action": "*", "Effect": "Allow", "Resource": "*", "Principal": "*",
			}},
		},
		"RouteTableIds": privateRefs("RouteTable%sPrivate"),
		"ServiceName":   cft.Sub("com.amazonaws.${AWS::Region}.s3"),
		"VpcId":         cft.Ref("VPC"),
	})

	t.AddResource("SecretRotationLambdaSecurityGroup", "AWS::EC2::SecurityGroup", map[string]any{
		"GroupDescription": cft.Join(" - ", "Security group for Secret Rotation Lambda ENIs", cft.Ref(cft.StackName)),
		"VpcId":            cft.Ref("VPC"),
		// Egress is narrowed from EC2's allow-all default to what in-VPC Lambdas do: call AWS
		// APIs over HTTPS and connect to a database port inside the VPC.
		"SecurityGroupEgress": []any{
			map[string]any{"IpProtocol": "tcp", "FromPort": portHTTPS, "ToPort": portHTTPS, "CidrIp": "0.0.0.0/0",
				"Description": "HTTPS to AWS APIs, through the endpoints or the NAT gateways"},
			map[string]any{"IpProtocol": "tcp", "FromPort": dbPortLow, "ToPort": ephemeralHigh, "CidrIp": vpcCIDR,
				"Description": "database ports inside the VPC"},
		},
		"Tags": []any{nameTag(cft.Sub("${AWS::StackName}-SecretRotationLambdaSecurityGroup"))},
	})
	// A separate ingress resource: a self-reference inside the group's own properties would be a
	// dependency cycle.
	t.AddResource("SecretRotationLambdaSecurityGroupIngress", "AWS::EC2::SecurityGroupIngress", map[string]any{
		"GroupId":               cft.GetAtt("SecretRotationLambdaSecurityGroup", "GroupId"),
		"IpProtocol":            "tcp",
		"FromPort":              portHTTPS,
		"ToPort":                portHTTPS,
		"SourceSecurityGroupId": cft.GetAtt("SecretRotationLambdaSecurityGroup", "GroupId"),
		"Description":           "Self Reference: HTTPS between members of this group",
	})
	t.AddResource("SecretsManagerVPCEndpointSecurityGroup", "AWS::EC2::SecurityGroup", map[string]any{
		"GroupDescription": cft.Join(" - ", "Security group for the Secrets Manager VPC endpoint", cft.Ref(cft.StackName)),
		"VpcId":            cft.Ref("VPC"),
		"SecurityGroupIngress": []any{
			map[string]any{"IpProtocol": "tcp", "FromPort": portHTTPS, "ToPort": portHTTPS,
				"SourceSecurityGroupId": cft.GetAtt("SecretRotationLambdaSecurityGroup", "GroupId"),
				"Description":           "HTTPS from the in-VPC Lambdas (secret rotation, bootstrap)"},
			// Private DNS sends every Secrets Manager call made in the VPC to this endpoint, so
			// refusing other clients (the bastion reading the master secret) would break them
			// without protecting anything: IAM decides who reads which secret.
			map[string]any{"IpProtocol": "tcp", "FromPort": portHTTPS, "ToPort": portHTTPS, "CidrIp": vpcCIDR,
				"Description": "HTTPS from other clients in the VPC, such as the bastion"},
		},
		"Tags": []any{nameTag(cft.Sub("${AWS::StackName}-SecretsManagerVPCEndpointSecurityGroup"))},
	})
	t.AddResource("SecretsManagerVPCEndpoint", "AWS::EC2::VPCEndpoint", map[string]any{
		"VpcEndpointType":   "Interface",
		"PrivateDnsEnabled": true,
		"VpcId":             cft.Ref("VPC"),
		"SubnetIds":         privateRefs("Subnet%sPrivate"),
		"SecurityGroupIds":  []any{cft.Ref("SecretsManagerVPCEndpointSecurityGroup")},
		"ServiceName":       cft.Sub("com.amazonaws.${AWS::Region}.secretsmanager"),
	})

	addFlowLogs(t)
	addNetworkOutputs(t)
	return t
}

func privateRefs(format string) []any {
	out := make([]any, len(networkAZs))
	for i, z := range networkAZs {
		out[i] = cft.Ref(fmt.Sprintf(format, z.Letter))
	}
	return out
}

// addNetworkACL adds one tier's ACL, its entries and its subnet associations.
func addNetworkACL(t *cft.Template, tier string, rules []aclRule) {
	acl := "NetworkAcl" + tier
	r := t.AddResource(acl, "AWS::EC2::NetworkAcl", map[string]any{
		"VpcId": cft.Ref("VPC"),
		"Tags":  []any{nameTag(nameJoin("NACL", tier))},
	})
	r.Metadata = aclMetadata(strings.ToLower(tier), rules)
	for _, z := range networkAZs {
		t.AddResource("SubnetNetworkAclAssociation"+z.Letter+tier, "AWS::EC2::SubnetNetworkAclAssociation", map[string]any{
			"SubnetId":     cft.Ref("Subnet" + z.Letter + tier),
			"NetworkAclId": cft.Ref(acl),
		})
	}
	for _, rule := range rules {
		dir := "In"
		if rule.Egress {
			dir = "Out"
		}
		t.AddResource("NetworkAclEntry"+dir+tier+rule.Name, "AWS::EC2::NetworkAclEntry", rule.properties(acl)).Condition = rule.Condition
	}
}

// addFlowLogs records all VPC traffic to a log group with a retention, through a role that can
// write to that group only.
func addFlowLogs(t *cft.Template) {
	addFlowLogsKey(t)
	t.AddResource("FlowLogsLogGroup", "AWS::Logs::LogGroup", map[string]any{
		"RetentionInDays": cft.Ref("FlowLogsRetentionInDays"),
		"KmsKeyId":        cft.GetAtt(flowLogsKey, "Arn"),
	})
	t.AddResource("FlowLogsRole", "AWS::IAM::Role", map[string]any{
		"Description": cft.Sub("Delivers the VPC flow logs of ${AWS::StackName} to their log group"),
		"AssumeRolePolicyDocument": map[string]any{
			"Version": "2012-10-17",
			"Statement": []any{map[string]any{
				"Effect":    "Allow",
				"Principal": map[string]any{"Service": "vpc-flow-logs.amazonaws.com"},
				"Action":    "sts:AssumeRole",
				// Confused-deputy guard: only flow logs of this account may assume the role.
				"Condition": map[string]any{
					"StringEquals": map[string]any{"aws:SourceAccount": cft.Ref(cft.AccountId)},
					"ArnLike":      map[string]any{"aws:SourceArn": cft.Sub("arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:vpc-flow-log/*")},
				},
			}},
		},
		"Policies": []any{map[string]any{
			"PolicyName": "flow-logs-delivery",
			"PolicyDocument": map[string]any{
				"Version": "2012-10-17",
				"Statement": []any{map[string]any{
					"Effect":   "Allow",
					"Action":   []any{"logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"},
					"Resource": cft.GetAtt("FlowLogsLogGroup", "Arn"),
				}},
			},
		}},
	})
	t.AddResource("FlowLog", "AWS::EC2::FlowLog", map[string]any{
		"ResourceId":               cft.Ref("VPC"),
		"ResourceType":             "VPC",
		"TrafficType":              "ALL",
		"LogDestinationType":       "cloud-watch-logs",
		"LogGroupName":             cft.Ref("FlowLogsLogGroup"),
		"DeliverLogsPermissionArn": cft.GetAtt("FlowLogsRole", "Arn"),
		"Tags":                     []any{nameTag(cft.Sub("${AWS::StackName}-FlowLog"))},
	})
}

// addNetworkOutputs keeps the sample's outputs and export names exactly: dependants import them.
func addNetworkOutputs(t *cft.Template) {
	export := func(name string) any { return cft.Sub("${AWS::StackName}-" + name) }
	out := func(name, desc string, value any, exportName string) {
		o := &cft.Output{Name: name, Description: desc, Value: value}
		if exportName != "" {
			o.Export = export(exportName)
		}
		t.AddOutput(o)
	}
	joinRefs := func(format string) any { return cft.Join(",", privateRefs(format)...) }
	out("TemplateID", "Template ID", "VPC-3AZs", "")
	out("StackName", "Stack name", cft.Sub("${AWS::StackName}"), "")
	out("VPC", "VPC", cft.Ref("VPC"), "VPC")
	out("ClassB", "Class B", cft.Ref("ClassB"), "ClassB")
	out("CidrBlock", "The set of IP addresses for the VPC", cft.GetAtt("VPC", "CidrBlock"), "CidrBlock")
	out("AZs", "AZs", len(networkAZs), "AZs")
	for i, z := range networkAZs {
		out("AZ"+z.Letter, "AZ of "+z.Letter, az(i), "AZ"+z.Letter)
	}
	out("SubnetsPublic", "Subnets public", joinRefs("Subnet%sPublic"), "SubnetsPublic")
	out("SubnetsPrivate", "Subnets private", joinRefs("Subnet%sPrivate"), "SubnetsPrivate")
	// The sample exports RouteTablesPublic as -RouteTablePublic; dependants use that name.
	out("RouteTablesPublic", "Route tables public", cft.Ref("RouteTablePublic"), "RouteTablePublic")
	out("RouteTablesPrivate", "Route tables private", joinRefs("RouteTable%sPrivate"), "RouteTablesPrivate")
	for _, z := range networkAZs {
		l := z.Letter
		out("Subnet"+l+"Public", "Subnet "+l+" public", cft.Ref("Subnet"+l+"Public"), "Subnet"+l+"Public")
		out("Subnet"+l+"Private", "Subnet "+l+" private", cft.Ref("Subnet"+l+"Private"), "Subnet"+l+"Private")
		out("RouteTable"+l+"Private", "Route table "+l+" private", cft.Ref("RouteTable"+l+"Private"), "RouteTable"+l+"Private")
	}
	out("S3VPCEndpoint", "S3 VPC Endpoint", cft.Ref("S3VPCEndpoint"), "S3VPCEndpoint")
	out("SecretsManagerVPCEndpoint", "Secrets Manager VPC Endpoint", cft.Ref("SecretsManagerVPCEndpoint"), "SecretsManagerVPCEndpoint")
	out("SecretRotationLambdaSecurityGroup", "Secret Rotation Lambda SecurityGroup for AWS Secrets Manager", cft.Ref("SecretRotationLambdaSecurityGroup"), "SecretRotationLambdaSecurityGroup")
	// New (after the sample's outputs), so that a bastion stack or a person can see what the public ACL admits to SSH.
	out("RemoteAccessCIDR", "CIDR block the public network ACL admits to SSH (none: no SSH)",
		cft.If(condRemoteAccess, cft.Ref("RemoteAccessCIDR"), "none"), "RemoteAccessCIDR")
}
