package policy

import (
	"fmt"
	"strings"

	"github.com/apgstack/apgstack/cft"
)

const (
	securityGroup        = "AWS::EC2::SecurityGroup"
	securityGroupIngress = "AWS::EC2::SecurityGroupIngress"
	launchTemplate       = "AWS::EC2::LaunchTemplate"
	launchConfiguration  = "AWS::AutoScaling::LaunchConfiguration"
	autoScalingGroup     = "AWS::AutoScaling::AutoScalingGroup"
)

// ingress is one inbound rule of a security group, inline or a separate resource.
type ingress struct {
	resource, path string
	cidr           any // CidrIp or CidrIpv6; nil when the source is a security group or prefix list
	protocol       string
	from, to       int
	portsKnown     bool
}

func ingressEntry(resource, path string, m map[string]any) ingress {
	in := ingress{resource: resource, path: path}
	if v, ok := m["CidrIp"]; ok {
		in.cidr = v
	} else if v, ok := m["CidrIpv6"]; ok {
		in.cidr = v
	}
	in.protocol = strings.ToLower(fmt.Sprint(m["IpProtocol"]))
	if in.protocol == "-1" || in.protocol == "all" {
		in.from, in.to, in.portsKnown = 0, 65535, true
		return in
	}
	from, okF, _ := Int(m["FromPort"])
	to, okT, _ := Int(m["ToPort"])
	if okF && okT {
		if from == -1 {
			from, to = 0, 65535
		}
		in.from, in.to, in.portsKnown = from, to, true
	}
	return in
}

// ingressOf returns the inbound rules of a security group declared in this template.
func (c *Context) ingressOf(sg *cft.Resource) []ingress {
	var out []ingress
	inline, _ := Prop(sg, "SecurityGroupIngress")
	for i, e := range List(inline) {
		if m, ok := e.(map[string]any); ok {
			out = append(out, ingressEntry(sg.Name, fmt.Sprintf("Properties.SecurityGroupIngress[%d]", i), m))
		}
	}
	for _, r := range c.OfType(securityGroupIngress) {
		if g, _ := Prop(r, "GroupId"); Mentions(g, sg.Name) {
			out = append(out, ingressEntry(r.Name, "Properties", r.Properties))
		}
	}
	return out
}

// allIngress returns every inbound rule in the template (inline, and separate resources whatever
// group they attach to).
func (c *Context) allIngress() []ingress {
	var out []ingress
	for _, sg := range c.OfType(securityGroup) {
		inline, _ := Prop(sg, "SecurityGroupIngress")
		for i, e := range List(inline) {
			if m, ok := e.(map[string]any); ok {
				out = append(out, ingressEntry(sg.Name, fmt.Sprintf("Properties.SecurityGroupIngress[%d]", i), m))
			}
		}
	}
	for _, r := range c.OfType(securityGroupIngress) {
		out = append(out, ingressEntry(r.Name, "Properties", r.Properties))
	}
	return out
}

func (in ingress) covers(port int) bool {
	return in.protocol != "udp" && in.protocol != "icmp" && in.protocol != "icmpv6" && in.protocol != "1" && in.protocol != "17" &&
		(!in.portsKnown || in.from <= port && port <= in.to)
}

// worldPortRule forbids world-open ingress to one port.
func worldPortRule(id, title, source string, port int, why string) *Rule {
	return &Rule{
		ID: id, Severity: Error, Title: title,
		Rationale: why,
		Fix:       fmt.Sprintf("admit port %d from a narrow CIDR (e.g. RemoteAccessCIDR) or use Session Manager instead", port),
		Source:    source,
		Types:     []string{securityGroup, securityGroupIngress},
		check: func(c *Context) []Violation {
			var out []Violation
			for _, in := range c.allIngress() {
				if !in.covers(port) {
					continue
				}
				if worldCIDR(in.cidr) {
					out = append(out, Violation{in.resource, in.path, fmt.Sprintf("port %d is open to %v", port, in.cidr)})
				} else if w := Why(in.cidr); w != "" && in.cidr != nil {
					out = append(out, Violation{in.resource, in.path, fmt.Sprintf("port %d is open to a CIDR: %s", port, w)})
				}
			}
			return out
		},
	}
}

var ec2Rules = []*Rule{
	{
		ID: "EC2-001", Severity: Error, Title: "VPCs have flow logs",
		Rationale: "without flow logs there is no record of who talked to what when an incident is investigated",
		Fix:       "add an AWS::EC2::FlowLog with ResourceType VPC and ResourceId !Ref the VPC, to a log group with a retention",
		Source:    "Security Hub EC2.6",
		Types:     []string{"AWS::EC2::VPC", "AWS::EC2::FlowLog"},
		check: forEach([]string{"AWS::EC2::VPC"}, func(c *Context, r *cft.Resource) []Violation {
			for _, fl := range c.OfType("AWS::EC2::FlowLog") {
				id, _ := Prop(fl, "ResourceId")
				if Mentions(id, r.Name) {
					return nil
				}
			}
			return one(r, "", "no flow log records this VPC's traffic")
		}),
	},
	worldPortRule("EC2-002", "No SSH open to the world", "Security Hub EC2.13", 22,
		"SSH open to the internet is scanned and brute-forced within minutes"),
	worldPortRule("EC2-003", "No RDP open to the world", "Security Hub EC2.14", 3389,
		"RDP open to the internet is scanned and brute-forced within minutes"),
	{
		ID: "EC2-004", Severity: Error, Title: "Unrestricted inbound traffic only to ports 80 and 443",
		Rationale: "any other port open to 0.0.0.0/0 or ::/0 exposes a service that was never meant for the internet",
		Fix:       "narrow the CIDR, or admit a source security group instead",
		Source:    "Security Hub EC2.18, EC2.19",
		Types:     []string{securityGroup, securityGroupIngress},
		check: func(c *Context) []Violation {
			var out []Violation
			for _, in := range c.allIngress() {
				if !worldCIDR(in.cidr) {
					continue
				}
				if in.portsKnown && (in.from == 80 && in.to == 80 || in.from == 443 && in.to == 443) {
					continue
				}
				ports := "all ports"
				if in.portsKnown && in.from == in.to {
					ports = fmt.Sprintf("port %d", in.from)
				} else if in.portsKnown {
					ports = fmt.Sprintf("ports %d-%d", in.from, in.to)
				}
				out = append(out, Violation{in.resource, in.path, fmt.Sprintf("%s open to %v", ports, in.cidr)})
			}
			return out
		},
	},
	{
		ID: "EC2-005", Severity: Error, Title: "Instances require IMDSv2",
		Rationale: "IMDSv1 answers any request, so a server-side request forgery hands out the instance role's credentials",
		Fix:       "set MetadataOptions.HttpTokens: required in the launch template",
		Source:    "Security Hub EC2.170 (launch templates), EC2.8 (instances), AutoScaling.3",
		Types:     []string{launchTemplate, launchConfiguration, "AWS::EC2::Instance"},
		check: func(c *Context) []Violation {
			var out []Violation
			for _, r := range c.OfType(launchTemplate, launchConfiguration) {
				prefix := "LaunchTemplateData."
				if r.Type == launchConfiguration {
					prefix = ""
				}
				v, _ := Prop(r, prefix+"MetadataOptions.HttpTokens")
				s, ok, why := Str(v)
				switch {
				case v == nil:
					out = append(out, one(r, "Properties."+prefix+"MetadataOptions.HttpTokens", "HttpTokens is not set: IMDSv1 stays on")...)
				case !ok:
					out = append(out, one(r, "Properties."+prefix+"MetadataOptions.HttpTokens", "HttpTokens: %s", why)...)
				case s != "required":
					out = append(out, one(r, "Properties."+prefix+"MetadataOptions.HttpTokens", "HttpTokens is %q: IMDSv1 stays on", s)...)
				}
			}
			for _, r := range c.OfType("AWS::EC2::Instance") {
				if _, ok := Prop(r, "LaunchTemplate"); !ok {
					out = append(out, one(r, "Properties.LaunchTemplate", "an instance without a launch template cannot require IMDSv2 in the template")...)
				}
			}
			return out
		},
	},
	{
		ID: "EC2-006", Severity: Error, Title: "EBS volumes are encrypted",
		Rationale: "an unencrypted volume or its snapshots can be read by whoever gets hold of them",
		Fix:       "set Ebs.Encrypted: true on every block device mapping (and Encrypted: true on volumes)",
		Source:    "Security Hub EC2.3, EC2.7",
		Types:     []string{launchTemplate, launchConfiguration, "AWS::EC2::Instance", "AWS::EC2::Volume"},
		check: func(c *Context) []Violation {
			var out []Violation
			for _, r := range c.OfType(launchTemplate, launchConfiguration, "AWS::EC2::Instance") {
				prefix := ""
				if r.Type == launchTemplate {
					prefix = "LaunchTemplateData."
				}
				if r.Type == "AWS::EC2::Instance" {
					if _, viaLT := Prop(r, "LaunchTemplate"); viaLT {
						if _, own := Prop(r, "BlockDeviceMappings"); !own {
							continue
						}
					}
				}
				bdm, _ := Prop(r, prefix+"BlockDeviceMappings")
				if len(List(bdm)) == 0 {
					out = append(out, one(r, "Properties."+prefix+"BlockDeviceMappings", "no block device mapping: the root volume's encryption depends on the image and the account default")...)
					continue
				}
				for i, e := range List(bdm) {
					m, _ := e.(map[string]any)
					ebs, isEBS := m["Ebs"].(map[string]any)
					if !isEBS {
						continue // instance store or NoDevice
					}
					path := fmt.Sprintf("Properties.%sBlockDeviceMappings[%d].Ebs.Encrypted", prefix, i)
					b, ok, why := Bool(ebs["Encrypted"])
					if !ok {
						out = append(out, one(r, path, "Encrypted: %s", why)...)
					} else if !b {
						out = append(out, one(r, path, "the volume is not encrypted")...)
					}
				}
			}
			for _, r := range c.OfType("AWS::EC2::Volume") {
				out = append(out, wantTrue(c, r, "Encrypted", "encryption")...)
			}
			return out
		},
	},
	{
		ID: "EC2-007", Severity: Error, Title: "Network ACLs admit no SSH or RDP from the world",
		Rationale: "the subnet's ACL is the second fence; it must not open the administration ports to the internet",
		Fix:       "admit port 22 (and 3389) in the ACL from the allowed CIDR only",
		Source:    "Security Hub EC2.21",
		Types:     []string{"AWS::EC2::NetworkAclEntry"},
		check: forEach([]string{"AWS::EC2::NetworkAclEntry"}, func(c *Context, r *cft.Resource) []Violation {
			if eg, _ := Prop(r, "Egress"); eg != nil {
				if b, ok, _ := Bool(eg); ok && b {
					return nil
				}
			}
			if a, _ := Prop(r, "RuleAction"); fmt.Sprint(a) != "allow" {
				return nil
			}
			cidr, _ := Prop(r, "CidrBlock")
			if cidr == nil {
				cidr, _ = Prop(r, "Ipv6CidrBlock")
			}
			proto, _ := Prop(r, "Protocol")
			p := fmt.Sprint(proto)
			if p != "6" && p != "-1" {
				return nil
			}
			from, to := 0, 65535
			if p == "6" {
				f, _ := Prop(r, "PortRange.From")
				t, _ := Prop(r, "PortRange.To")
				fi, ok1, _ := Int(f)
				ti, ok2, _ := Int(t)
				if ok1 && ok2 {
					from, to = fi, ti
				}
			}
			for _, port := range []int{22, 3389} {
				if from <= port && port <= to {
					if worldCIDR(cidr) {
						return one(r, "Properties.CidrBlock", "the ACL admits port %d from %v", port, cidr)
					}
					if w := Why(cidr); w != "" {
						return one(r, "Properties.CidrBlock", "the ACL admits port %d from a CIDR: %s", port, w)
					}
				}
			}
			return nil
		}),
	},
	{
		ID: "EC2-008", Severity: Error, Title: "Auto Scaling groups use launch templates",
		Rationale: "launch configurations cannot be created on new accounts and lack IMDSv2 defaults and versioning",
		Fix:       "replace the AWS::AutoScaling::LaunchConfiguration with an AWS::EC2::LaunchTemplate",
		Source:    "Security Hub AutoScaling.9",
		Types:     []string{autoScalingGroup, launchConfiguration},
		check: func(c *Context) []Violation {
			var out []Violation
			for _, r := range c.OfType(autoScalingGroup) {
				if _, ok := Prop(r, "LaunchConfigurationName"); ok {
					out = append(out, one(r, "Properties.LaunchConfigurationName", "the group launches from a launch configuration")...)
				}
			}
			for _, r := range c.OfType(launchConfiguration) {
				out = append(out, one(r, "", "launch configurations are retired; use a launch template")...)
			}
			return out
		},
	},
}
