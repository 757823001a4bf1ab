package stacks

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"testing"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/cft"
	"github.com/apgstack/apgstack/internal/testkit/aclflow"
	"github.com/apgstack/apgstack/internal/testkit/golden"
)

// synthNetwork builds the network stack from the default configuration and parses its rendered
// YAML back, so that the tests below check what synth writes, not the in-memory model.
func synthNetwork(t *testing.T) (*Stack, *cft.Template) {
	t.Helper()
	s, err := Build(apgstack.Default(), Network)
	if err != nil {
		t.Fatal(err)
	}
	y, err := s.Template.YAML()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := cft.Parse(y)
	if err != nil {
		t.Fatalf("parse synthesized template: %v", err)
	}
	return s, parsed
}

// Run `go test ./stacks -run Network -update` to accept a deliberate change, after review.
func TestNetworkGolden(t *testing.T) {
	s, err := Build(apgstack.Default(), Network)
	if err != nil {
		t.Fatal(err)
	}
	y, err := s.Template.YAML()
	if err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "network.golden.yaml", y)
	j, err := s.Template.JSON()
	if err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "network.golden.json", j)
}

func TestNetworkTemplateDoesNotDependOnConfig(t *testing.T) {
	cfg := apgstack.Default()
	cfg.Network.ClassB = 42
	cfg.Network.FlowLogsRetentionInDays = 365
	cfg.Network.StackName = "other"
	a, err := Build(apgstack.Default(), Network)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(cfg, Network)
	if err != nil {
		t.Fatal(err)
	}
	ya, _ := a.Template.YAML()
	yb, _ := b.Template.YAML()
	if string(ya) != string(yb) {
		t.Error("the template changed with the configuration; only parameter values should")
	}
	want := []Param{{"ClassB", "42"}, {"RemoteAccessCIDR", cfg.Bastion.RemoteAccessCIDR}, {"FlowLogsRetentionInDays", "365"}}
	if !slices.Equal(b.Parameters, want) {
		t.Errorf("parameters = %v, want %v", b.Parameters, want)
	}
	if b.Name != "other" || b.Kind != Network {
		t.Errorf("stack %s/%s, want network/other", b.Kind, b.Name)
	}
	// Every parameter value must name a template parameter and satisfy it.
	for _, p := range b.Parameters {
		if b.Template.Parameter(p.ParameterKey) == nil {
			t.Errorf("parameter value %s has no template parameter", p.ParameterKey)
		}
	}
}

func TestNetworkParameters(t *testing.T) {
	_, tpl := synthNetwork(t)
	p := tpl.Parameter("ClassB")
	if p == nil || p.Type != "Number" || p.Default != 0 || *p.MinValue != 0 || *p.MaxValue != 255 ||
		p.ConstraintDescription != "Must be in the range [0-255]" ||
		p.Description != "Specify the 2nd Octet of IPv4 CIDR block for the VPC (10.XXX.0.0/16) in the range [0-255]" {
		t.Errorf("ClassB parameter differs from the sample's: %+v", p)
	}
	if tpl.Interface == nil || len(tpl.Interface.ParameterGroups) == 0 ||
		tpl.Interface.ParameterGroups[0].Label != "VPC Parameters" ||
		!slices.Equal(tpl.Interface.ParameterGroups[0].Parameters, []string{"ClassB"}) ||
		tpl.Interface.ParameterLabels["ClassB"] != "ClassB 2nd Octet" {
		t.Errorf("console interface differs from the sample's: %+v", tpl.Interface)
	}
	f := tpl.Parameter("FlowLogsRetentionInDays")
	if f == nil || f.Default != 14 || !slices.Contains(f.AllowedValues, any(3653)) {
		t.Errorf("FlowLogsRetentionInDays: %+v", f)
	}
	// RemoteAccessCIDR defaults to empty, so that a stack created from the sample updates with its
	// previous parameters; empty admits no SSH (never SSH from the world), a block admits it.
	r := tpl.Parameter("RemoteAccessCIDR")
	if r == nil || r.Default != "" {
		t.Errorf("RemoteAccessCIDR must default to empty: %+v", r)
	}
	for _, tc := range []struct {
		cidr string
		ssh  bool
	}{{"", false}, {"203.0.113.0/24", true}} {
		params := map[string]string{}
		if tc.cidr != "" {
			params["RemoteAccessCIDR"] = tc.cidr
		}
		ev, err := tpl.Evaluate(params)
		if err != nil {
			t.Fatalf("RemoteAccessCIDR %q: defaults do not resolve: %v", tc.cidr, err)
		}
		var active []string
		for _, r := range ev.Active() {
			active = append(active, r.Name)
		}
		for _, entry := range []string{"NetworkAclEntryInPublicSSH", "NetworkAclEntryInPublicPing", "NetworkAclEntryOutPublicSSHReplies", "NetworkAclEntryOutPublicPingReplies"} {
			if slices.Contains(active, entry) != tc.ssh {
				t.Errorf("RemoteAccessCIDR %q: %s exists %v, want %v", tc.cidr, entry, !tc.ssh, tc.ssh)
			}
		}
		want := tc.cidr
		if want == "" {
			want = "none"
		}
		for _, o := range ev.ActiveOutputs() {
			if o.Name == "RemoteAccessCIDR" && o.Value != want {
				t.Errorf("RemoteAccessCIDR %q: output %v, want %s", tc.cidr, o.Value, want)
			}
		}
	}
}

// The subnet blocks, computed from the synthesized template for several ClassB values, are six
// disjoint /20s inside the VPC's /16, at the sample's addresses.
func TestNetworkSubnetBlocks(t *testing.T) {
	_, tpl := synthNetwork(t)
	want := map[string]int{ // third octet
		"SubnetAPublic": 0, "SubnetAPrivate": 16,
		"SubnetBPublic": 32, "SubnetBPrivate": 48,
		"SubnetCPublic": 64, "SubnetCPrivate": 80,
	}
	for _, classB := range []int{0, 17, 255} {
		t.Run("ClassB="+strconv.Itoa(classB), func(t *testing.T) {
			ev, err := tpl.Evaluate(map[string]string{"ClassB": strconv.Itoa(classB), "RemoteAccessCIDR": "203.0.113.0/24"})
			if err != nil {
				t.Fatal(err)
			}
			var vpc netip.Prefix
			blocks := map[string]netip.Prefix{}
			azs := map[string]any{}
			for _, r := range ev.Active() {
				switch r.Type {
				case "AWS::EC2::VPC":
					vpc = mustPrefix(t, r.Name, r.Properties["CidrBlock"])
				case "AWS::EC2::Subnet":
					blocks[r.Name] = mustPrefix(t, r.Name, r.Properties["CidrBlock"])
					azs[r.Name] = r.Properties["AvailabilityZone"]
					public := r.Properties["MapPublicIpOnLaunch"] == true
					if public != (r.Name[len(r.Name)-6:] == "Public") {
						t.Errorf("%s: MapPublicIpOnLaunch = %v", r.Name, r.Properties["MapPublicIpOnLaunch"])
					}
				}
			}
			if vpc != netip.MustParsePrefix(fmt.Sprintf("10.%d.0.0/16", classB)) {
				t.Fatalf("VPC block %s, want 10.%d.0.0/16", vpc, classB)
			}
			if len(blocks) != 6 {
				t.Fatalf("%d subnets, want 6", len(blocks))
			}
			names := make([]string, 0, len(blocks))
			for n := range blocks {
				names = append(names, n)
			}
			sort.Strings(names)
			for i, n := range names {
				b := blocks[n]
				if wantB := netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.0/20", classB, want[n])); b != wantB {
					t.Errorf("%s = %s, want %s", n, b, wantB)
				}
				if b.Bits() != 20 || !vpc.Contains(b.Addr()) || b.Bits() < vpc.Bits() {
					t.Errorf("%s = %s is not a /20 inside %s", n, b, vpc)
				}
				for _, m := range names[i+1:] {
					if b.Overlaps(blocks[m]) {
						t.Errorf("%s (%s) overlaps %s (%s)", n, b, m, blocks[m])
					}
				}
			}
			// Public and private subnet of one letter share an AZ; letters use AZs 0, 1, 2.
			for i, l := range []string{"A", "B", "C"} {
				wantAZ := cft.Select(i, cft.GetAZs(""))
				for _, tier := range []string{"Public", "Private"} {
					if fmt.Sprint(azs["Subnet"+l+tier]) != fmt.Sprint(wantAZ) {
						t.Errorf("Subnet%s%s AZ = %v, want %v", l, tier, azs["Subnet"+l+tier], wantAZ)
					}
				}
			}
		})
	}
}

func mustPrefix(t *testing.T, name string, v any) netip.Prefix {
	t.Helper()
	s, ok := v.(string)
	if !ok {
		t.Fatalf("%s.CidrBlock not resolved: %v", name, v)
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || p.Masked() != p {
		t.Fatalf("%s.CidrBlock %q: not a CIDR block (%v)", name, s, err)
	}
	return p
}

// The outputs and export names of the sample, exactly: dependants import them.
func TestNetworkOutputs(t *testing.T) {
	_, tpl := synthNetwork(t)
	want := []struct{ name, export string }{
		{"TemplateID", ""}, {"StackName", ""}, {"VPC", "VPC"}, {"ClassB", "ClassB"}, {"CidrBlock", "CidrBlock"},
		{"AZs", "AZs"}, {"AZA", "AZA"}, {"AZB", "AZB"}, {"AZC", "AZC"},
		{"SubnetsPublic", "SubnetsPublic"}, {"SubnetsPrivate", "SubnetsPrivate"},
		{"RouteTablesPublic", "RouteTablePublic"}, {"RouteTablesPrivate", "RouteTablesPrivate"},
		{"SubnetAPublic", "SubnetAPublic"}, {"SubnetAPrivate", "SubnetAPrivate"}, {"RouteTableAPrivate", "RouteTableAPrivate"},
		{"SubnetBPublic", "SubnetBPublic"}, {"SubnetBPrivate", "SubnetBPrivate"}, {"RouteTableBPrivate", "RouteTableBPrivate"},
		{"SubnetCPublic", "SubnetCPublic"}, {"SubnetCPrivate", "SubnetCPrivate"}, {"RouteTableCPrivate", "RouteTableCPrivate"},
		{"S3VPCEndpoint", "S3VPCEndpoint"}, {"SecretsManagerVPCEndpoint", "SecretsManagerVPCEndpoint"},
		{"SecretRotationLambdaSecurityGroup", "SecretRotationLambdaSecurityGroup"},
		{"RemoteAccessCIDR", "RemoteAccessCIDR"}, // new, after the sample's
	}
	if len(tpl.Outputs) != len(want) {
		t.Errorf("%d outputs, want %d", len(tpl.Outputs), len(want))
	}
	ev, err := tpl.Evaluate(map[string]string{"RemoteAccessCIDR": "203.0.113.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	got := ev.ActiveOutputs()
	for i, w := range want {
		if i >= len(got) {
			break
		}
		o := got[i]
		if o.Name != w.name {
			t.Errorf("output %d is %s, want %s", i, o.Name, w.name)
			continue
		}
		wantExport := any(nil)
		if w.export != "" {
			wantExport = cft.DefaultPseudo[cft.StackName].(string) + "-" + w.export
		}
		if fmt.Sprint(o.Export) != fmt.Sprint(wantExport) {
			t.Errorf("output %s exported as %v, want %v", o.Name, o.Export, wantExport)
		}
	}
	if v := tpl.Output("TemplateID").Value; v != "VPC-3AZs" {
		t.Errorf("TemplateID = %v", v)
	}
}

// The flow-log role can write to its own log group and nothing else, and only flow logs of this
// account can assume it.
func TestNetworkFlowLogsLeastPrivilege(t *testing.T) {
	_, tpl := synthNetwork(t)
	role := tpl.Resource("FlowLogsRole")
	if role == nil {
		t.Fatal("no FlowLogsRole")
	}
	// Its permissions are a customer-managed policy (externalizePolicies), not inline.
	arns, _ := role.Properties["ManagedPolicyArns"].([]any)
	if len(arns) != 1 || role.Properties["Policies"] != nil {
		t.Fatalf("managed policies %v, inline %v: want one customer-managed policy", arns, role.Properties["Policies"])
	}
	name, _ := cft.RefName(arns[0])
	doc := tpl.Resource(name).Properties["PolicyDocument"].(map[string]any)
	stmts := doc["Statement"].([]any)
	if len(stmts) != 1 {
		t.Fatalf("%d statements, want 1", len(stmts))
	}
	st := stmts[0].(map[string]any)
	if fmt.Sprint(st["Action"]) != "[logs:CreateLogStream logs:PutLogEvents logs:DescribeLogStreams]" {
		t.Errorf("actions %v", st["Action"])
	}
	if res, attr, ok := cft.GetAttTarget(st["Resource"]); !ok || res != "FlowLogsLogGroup" || attr != "Arn" {
		t.Errorf("resource %v, want the flow log group's ARN", st["Resource"])
	}
	trust := role.Properties["AssumeRolePolicyDocument"].(map[string]any)["Statement"].([]any)[0].(map[string]any)
	if fmt.Sprint(trust["Principal"]) != "map[Service:vpc-flow-logs.amazonaws.com]" {
		t.Errorf("trust principal %v", trust["Principal"])
	}
	cond := trust["Condition"].(map[string]any)["StringEquals"].(map[string]any)
	if name, ok := cft.RefName(cond["aws:SourceAccount"]); !ok || name != cft.AccountId {
		t.Errorf("aws:SourceAccount condition %v", cond)
	}
	fl := tpl.Resource("FlowLog")
	if n, _ := cft.RefName(fl.Properties["ResourceId"]); n != "VPC" || fl.Properties["TrafficType"] != "ALL" {
		t.Errorf("flow log %v", fl.Properties)
	}
	lg := tpl.Resource("FlowLogsLogGroup")
	if n, _ := cft.RefName(lg.Properties["RetentionInDays"]); n != "FlowLogsRetentionInDays" {
		t.Errorf("log group retention %v", lg.Properties["RetentionInDays"])
	}
}

// The Lambda security group refers to itself on 443 through a separate ingress resource, and the
// Secrets Manager endpoint admits it.
func TestNetworkSecurityGroups(t *testing.T) {
	_, tpl := synthNetwork(t)
	in := tpl.Resource("SecretRotationLambdaSecurityGroupIngress")
	if in == nil || in.Type != "AWS::EC2::SecurityGroupIngress" {
		t.Fatal("no separate self-reference ingress")
	}
	for _, k := range []string{"GroupId", "SourceSecurityGroupId"} {
		if r, a, ok := cft.GetAttTarget(in.Properties[k]); !ok || r != "SecretRotationLambdaSecurityGroup" || a != "GroupId" {
			t.Errorf("%s = %v", k, in.Properties[k])
		}
	}
	if in.Properties["FromPort"] != 443 || in.Properties["ToPort"] != 443 || in.Properties["IpProtocol"] != "tcp" {
		t.Errorf("self reference is not HTTPS only: %v", in.Properties)
	}
	if _, ok := tpl.Resource("SecretRotationLambdaSecurityGroup").Properties["SecurityGroupIngress"]; ok {
		t.Error("inline ingress on the Lambda group: a self-reference there is a cycle")
	}
	ep := tpl.Resource("SecretsManagerVPCEndpoint")
	if ep.Properties["PrivateDnsEnabled"] != true || ep.Properties["VpcEndpointType"] != "Interface" {
		t.Errorf("endpoint %v", ep.Properties)
	}
	if fmt.Sprint(ep.Properties["SubnetIds"]) != fmt.Sprint(privateRefs("Subnet%sPrivate")) {
		t.Errorf("endpoint subnets %v", ep.Properties["SubnetIds"])
	}
	sg := tpl.Resource("SecretsManagerVPCEndpointSecurityGroup")
	admitsLambda := false
	for _, r := range sg.Properties["SecurityGroupIngress"].([]any) {
		m := r.(map[string]any)
		if g, _, ok := cft.GetAttTarget(m["SourceSecurityGroupId"]); ok && g == "SecretRotationLambdaSecurityGroup" && m["FromPort"] == 443 && m["ToPort"] == 443 {
			admitsLambda = true
		}
		if m["FromPort"] != 443 || m["ToPort"] != 443 {
			t.Errorf("endpoint group admits more than HTTPS: %v", m)
		}
	}
	if !admitsLambda {
		t.Error("the endpoint's security group does not admit the Lambda security group on 443")
	}
	s3 := tpl.Resource("S3VPCEndpoint")
	if fmt.Sprint(s3.Properties["RouteTableIds"]) != fmt.Sprint(privateRefs("RouteTable%sPrivate")) {
		t.Errorf("S3 endpoint route tables %v", s3.Properties["RouteTableIds"])
	}
}

// Routes: the shared public table goes to the internet gateway; each private table to the NAT
// gateway of its own AZ, which sits in that AZ's public subnet.
func TestNetworkRoutes(t *testing.T) {
	_, tpl := synthNetwork(t)
	for _, l := range []string{"A", "B", "C"} {
		rt := tpl.Resource("RouteTablePrivate" + l + "NATRoute")
		if n, _ := cft.RefName(rt.Properties["NatGatewayId"]); n != "NATGateway"+l {
			t.Errorf("private route %s via %v", l, rt.Properties["NatGatewayId"])
		}
		nat := tpl.Resource("NATGateway" + l)
		if n, _ := cft.RefName(nat.Properties["SubnetId"]); n != "Subnet"+l+"Public" {
			t.Errorf("NAT gateway %s in %v", l, nat.Properties["SubnetId"])
		}
		if r, a, _ := cft.GetAttTarget(nat.Properties["AllocationId"]); r != "NATEIP"+l || a != "AllocationId" {
			t.Errorf("NAT gateway %s EIP %v", l, nat.Properties["AllocationId"])
		}
	}
	igw := tpl.Resource("RouteTablePublicInternetRoute")
	if n, _ := cft.RefName(igw.Properties["GatewayId"]); n != "InternetGateway" || !slices.Contains(igw.DependsOn, "VPCGatewayAttachment") {
		t.Errorf("internet route %+v", igw)
	}
}

// flowNet is the synthesized network for one ClassB and SSH source, with addresses in it.
type flowNet struct {
	*aclflow.Network
	classB int
}

func (f flowNet) addr(third, fourth int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(f.classB), byte(third), byte(fourth)})
}

func loadFlowNet(t *testing.T, tpl *cft.Template, classB int, remote string) flowNet {
	t.Helper()
	ev, err := tpl.Evaluate(map[string]string{"ClassB": strconv.Itoa(classB), "RemoteAccessCIDR": remote})
	if err != nil {
		t.Fatal(err)
	}
	n, err := aclflow.FromResources(ev.Active())
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range n.Subnets {
		want := "NetworkAclPrivate"
		if name[len(name)-6:] == "Public" {
			want = "NetworkAclPublic"
		}
		if s.ACL.Name != want {
			t.Fatalf("%s has ACL %s, want %s", name, s.ACL.Name, want)
		}
	}
	return flowNet{n, classB}
}

func tcp(src netip.Addr, sport int, dst netip.Addr, dport int) aclflow.Packet {
	return aclflow.Packet{Protocol: aclflow.TCP, Src: src, SrcPort: sport, Dst: dst, DstPort: dport}
}

// The flows the three stacks need pass the synthesized ACLs, both ways; ports nobody needs are
// refused. Checked for a narrowed SSH source and for the console default 0.0.0.0/0.
func TestNetworkACLFlows(t *testing.T) {
	_, tpl := synthNetwork(t)
	var (
		sshClient = netip.MustParseAddr("203.0.113.5")  // inside RemoteAccessCIDR
		stranger  = netip.MustParseAddr("192.0.2.9")    // outside it
		webServer = netip.MustParseAddr("198.51.100.7") // somewhere on the internet
		s3Address = netip.MustParseAddr("52.216.8.10")  // reached through the S3 gateway endpoint
	)
	// Client ports span what Linux, Lambda and NAT gateways use.
	clientPorts := []int{1024, 32768, 60999, 65535}

	type flow struct {
		name string
		legs func(f flowNet, cport int) []aclflow.Leg
	}
	allowed := []flow{
		{"SSH from RemoteAccessCIDR to the bastion", func(f flowNet, c int) []aclflow.Leg {
			return []aclflow.Leg{{Packet: tcp(sshClient, c, f.addr(0, 10), 22), To: "SubnetAPublic"}}
		}},
		{"bastion HTTPS to AWS APIs and package repositories", func(f flowNet, c int) []aclflow.Leg {
			return []aclflow.Leg{{Packet: tcp(f.addr(32, 10), c, webServer, 443), From: "SubnetBPublic"}}
		}},
		{"private tier HTTPS through the NAT gateway, replies back", func(f flowNet, c int) []aclflow.Leg {
			lambda, nat := f.addr(80, 30), f.addr(64, 20)
			return []aclflow.Leg{
				{Packet: tcp(lambda, c, webServer, 443), From: "SubnetCPrivate", To: "SubnetCPublic"},
				{Packet: tcp(nat, c, webServer, 443), From: "SubnetCPublic"},
			}
		}},
		{"private tier HTTP through the NAT gateway, replies back", func(f flowNet, c int) []aclflow.Leg {
			db, nat := f.addr(16, 50), f.addr(0, 20)
			return []aclflow.Leg{
				{Packet: tcp(db, c, webServer, 80), From: "SubnetAPrivate", To: "SubnetAPublic"},
				{Packet: tcp(nat, c, webServer, 80), From: "SubnetAPublic"},
			}
		}},
		{"PostgreSQL 5432 from the bastion to the writer", func(f flowNet, c int) []aclflow.Leg {
			return []aclflow.Leg{{Packet: tcp(f.addr(0, 10), c, f.addr(16, 50), 5432), From: "SubnetAPublic", To: "SubnetAPrivate"}}
		}},
		{"PostgreSQL on the lowest DBPort 1150 from the bastion to a reader in another AZ", func(f flowNet, c int) []aclflow.Leg {
			return []aclflow.Leg{{Packet: tcp(f.addr(0, 10), c, f.addr(48, 50), 1150), From: "SubnetAPublic", To: "SubnetBPrivate"}}
		}},
		{"PostgreSQL on the highest DBPort 65535", func(f flowNet, c int) []aclflow.Leg {
			return []aclflow.Leg{{Packet: tcp(f.addr(0, 10), c, f.addr(16, 50), 65535), From: "SubnetAPublic", To: "SubnetAPrivate"}}
		}},
		{"PostgreSQL from a Lambda to the writer", func(f flowNet, c int) []aclflow.Leg {
			return []aclflow.Leg{{Packet: tcp(f.addr(80, 30), c, f.addr(16, 50), 5432), From: "SubnetCPrivate", To: "SubnetAPrivate"}}
		}},
		{"HTTPS from a Lambda to the Secrets Manager endpoint", func(f flowNet, c int) []aclflow.Leg {
			return []aclflow.Leg{{Packet: tcp(f.addr(80, 30), c, f.addr(16, 100), 443), From: "SubnetCPrivate", To: "SubnetAPrivate"}}
		}},
		{"HTTPS from the bastion to the Secrets Manager endpoint", func(f flowNet, c int) []aclflow.Leg {
			return []aclflow.Leg{{Packet: tcp(f.addr(32, 10), c, f.addr(48, 100), 443), From: "SubnetBPublic", To: "SubnetBPrivate"}}
		}},
		{"HTTPS from the private tier to S3 through the gateway endpoint", func(f flowNet, c int) []aclflow.Leg {
			return []aclflow.Leg{{Packet: tcp(f.addr(48, 50), c, s3Address, 443), From: "SubnetBPrivate"}}
		}},
	}
	refused := []flow{
		{"telnet 23 from the internet to the public tier", func(f flowNet, c int) []aclflow.Leg {
			return []aclflow.Leg{{Packet: tcp(sshClient, c, f.addr(0, 10), 23), To: "SubnetAPublic"}}
		}},
		{"SSH from the bastion to the private tier", func(f flowNet, c int) []aclflow.Leg {
			return []aclflow.Leg{{Packet: tcp(f.addr(0, 10), c, f.addr(16, 50), 22), From: "SubnetAPublic", To: "SubnetAPrivate"}}
		}},
		{"RDP 3389 from the private tier to the internet", func(f flowNet, c int) []aclflow.Leg {
			return []aclflow.Leg{{Packet: tcp(f.addr(16, 50), c, webServer, 3389), From: "SubnetAPrivate", To: "SubnetAPublic"}}
		}},
		{"SMTP 25 from the private tier to the internet", func(f flowNet, c int) []aclflow.Leg {
			return []aclflow.Leg{{Packet: tcp(f.addr(80, 30), c, webServer, 25), From: "SubnetCPrivate", To: "SubnetCPublic"}}
		}},
		{"SSH from the bastion out to the internet", func(f flowNet, c int) []aclflow.Leg {
			return []aclflow.Leg{{Packet: tcp(f.addr(0, 10), c, webServer, 22), From: "SubnetAPublic"}}
		}},
		{"SMB 445 inside the VPC to the private tier", func(f flowNet, c int) []aclflow.Leg {
			return []aclflow.Leg{{Packet: tcp(f.addr(0, 10), c, f.addr(16, 50), 445), From: "SubnetAPublic", To: "SubnetAPrivate"}}
		}},
		{"SNMP (UDP 161) from the internet to the public tier", func(f flowNet, c int) []aclflow.Leg {
			p := tcp(webServer, c, f.addr(0, 10), 161)
			p.Protocol = aclflow.UDP
			return []aclflow.Leg{{Packet: p, To: "SubnetAPublic"}}
		}},
	}

	for _, remote := range []string{"203.0.113.0/24", "0.0.0.0/0"} {
		for _, classB := range []int{0, 17, 255} {
			f := loadFlowNet(t, tpl, classB, remote)
			prefix := fmt.Sprintf("RemoteAccessCIDR=%s/ClassB=%d/", remote, classB)
			for _, fl := range allowed {
				t.Run(prefix+"allows "+fl.name, func(t *testing.T) {
					for _, c := range clientPorts {
						if err := f.Exchange(fl.legs(f, c)...); err != nil {
							t.Errorf("client port %d: %v", c, err)
						}
					}
				})
			}
			for _, fl := range refused {
				t.Run(prefix+"refuses "+fl.name, func(t *testing.T) {
					for _, c := range clientPorts {
						if err := f.Exchange(fl.legs(f, c)...); err == nil {
							t.Errorf("client port %d: passed, want refused", c)
						}
					}
				})
			}
			t.Run(prefix+"path MTU discovery", func(t *testing.T) {
				fragNeeded := aclflow.Packet{Protocol: aclflow.ICMP, Src: webServer, Dst: f.addr(0, 10), ICMPType: 3, ICMPCode: 4}
				if _, err := f.Send(aclflow.Leg{Packet: fragNeeded, To: "SubnetAPublic"}); err != nil {
					t.Error(err)
				}
				// Ping is admitted from RemoteAccessCIDR only (the bastion's security group
				// allows it from there), with its echo reply.
				ping := aclflow.Packet{Protocol: aclflow.ICMP, Src: sshClient, Dst: f.addr(0, 10), ICMPType: 8}
				if _, err := f.Send(aclflow.Leg{Packet: ping, To: "SubnetAPublic"}); err != nil {
					t.Errorf("ping from RemoteAccessCIDR: %v", err)
				}
				reply := aclflow.Packet{Protocol: aclflow.ICMP, Src: f.addr(0, 10), Dst: sshClient, ICMPType: 0}
				if _, err := f.Send(aclflow.Leg{Packet: reply, From: "SubnetAPublic"}); err != nil {
					t.Errorf("echo reply to RemoteAccessCIDR: %v", err)
				}
				ping.Src = stranger
				_, err := f.Send(aclflow.Leg{Packet: ping, To: "SubnetAPublic"})
				if remote != "0.0.0.0/0" && err == nil {
					t.Error("ping from outside RemoteAccessCIDR passed, want refused")
				}
			})
		}
	}

	// With a narrowed SSH source, others are refused at the ACL already.
	f := loadFlowNet(t, tpl, 17, "203.0.113.0/24")
	if err := f.Exchange(aclflow.Leg{Packet: tcp(stranger, 50000, f.addr(0, 10), 22), To: "SubnetAPublic"}); err == nil {
		t.Error("SSH from outside RemoteAccessCIDR passed the public ACL")
	}
	// PostgreSQL is admitted by the private tier's DB-port rule, the one written for it.
	v, err := f.Send(aclflow.Leg{Packet: tcp(f.addr(0, 10), 40000, f.addr(16, 50), 5432), From: "SubnetAPublic", To: "SubnetAPrivate"})
	if err != nil || len(v) != 2 || v[1].Rule != 100 {
		t.Errorf("PostgreSQL into the private tier: %v %v, want private ingress rule 100", v, err)
	}
}

// Every ACL entry is written down in its ACL's Metadata, so the template says what each tier admits.
func TestNetworkACLMetadataListsEveryRule(t *testing.T) {
	_, tpl := synthNetwork(t)
	for tier, rules := range map[string][]aclRule{"Public": publicACLRules, "Private": privateACLRules} {
		acl := tpl.Resource("NetworkAcl" + tier)
		admits := acl.Metadata["apgstack::Admits"].(map[string]any)
		var in, out int
		for _, r := range rules {
			if r.Egress {
				out++
			} else {
				in++
			}
		}
		if len(admits["Inbound"].([]any)) != in || len(admits["Outbound"].([]any)) != out {
			t.Errorf("%s metadata does not list every rule: %v", tier, admits)
		}
		entries := 0
		for _, r := range tpl.ResourcesOfType("AWS::EC2::NetworkAclEntry") {
			if n, _ := cft.RefName(r.Properties["NetworkAclId"]); n == "NetworkAcl"+tier {
				entries++
				if r.Properties["RuleAction"] != "allow" {
					t.Errorf("%s: only allow rules are written; the implicit rule * denies", r.Name)
				}
			}
		}
		if entries != len(rules) {
			t.Errorf("%s ACL has %d entries, want %d", tier, entries, len(rules))
		}
	}
}

// TestRemoteAccessAgrees: the network's public ACL and the bastion's security group admit SSH
// from the same block, both from the configuration's bastion.remoteAccessCIDR.
func TestRemoteAccessAgrees(t *testing.T) {
	cfg := apgstack.Default()
	cfg.Bastion.RemoteAccessCIDR = "198.51.100.0/24"
	var got []string
	for _, kind := range []string{Network, Bastion} {
		s, err := Build(cfg, kind)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, s.ParameterMap()["RemoteAccessCIDR"])
	}
	if got[0] != "198.51.100.0/24" || got[1] != got[0] {
		t.Errorf("RemoteAccessCIDR network %q, bastion %q: want both 198.51.100.0/24", got[0], got[1])
	}
}
