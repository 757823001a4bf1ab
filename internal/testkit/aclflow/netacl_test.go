package aclflow

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/apgstack/apgstack/cft"
)

var (
	anywhere = netip.MustParsePrefix("0.0.0.0/0")
	tenNet   = netip.MustParsePrefix("10.0.0.0/8")
	client   = netip.MustParseAddr("192.0.2.1")
	inside   = netip.MustParseAddr("10.1.2.3")
)

// Rule order decides, not specificity: a lower-numbered deny wins over a later allow.
func TestEvaluateRuleOrder(t *testing.T) {
	acl := &ACL{Name: "acl", Rules: []Rule{
		{Number: 200, Allow: true, Protocol: TCP, CIDR: anywhere, FromPort: 1, ToPort: 65535},
		{Number: 100, Allow: false, Protocol: TCP, CIDR: netip.MustParsePrefix("192.0.2.0/24"), FromPort: 22, ToPort: 22},
		{Number: 50, Egress: true, Allow: true, Protocol: All, CIDR: tenNet},
		{Number: 300, Allow: true, Protocol: ICMP, CIDR: anywhere, ICMPType: 3, ICMPCode: -1},
	}}
	acl.sort()
	tests := []struct {
		name    string
		egress  bool
		p       Packet
		allowed bool
		rule    int
	}{
		{"denied by the earlier rule", false, Packet{Protocol: TCP, Src: client, Dst: inside, SrcPort: 40000, DstPort: 22}, false, 100},
		{"other port falls to the allow", false, Packet{Protocol: TCP, Src: client, Dst: inside, SrcPort: 40000, DstPort: 23}, true, 200},
		{"other source falls to the allow", false, Packet{Protocol: TCP, Src: netip.MustParseAddr("198.51.100.1"), Dst: inside, DstPort: 22}, true, 200},
		{"udp matches nothing: implicit deny", false, Packet{Protocol: UDP, Src: client, Dst: inside, DstPort: 53}, false, 0},
		{"icmp any code of type 3", false, Packet{Protocol: ICMP, Src: client, Dst: inside, ICMPType: 3, ICMPCode: 1}, true, 300},
		{"icmp echo refused", false, Packet{Protocol: ICMP, Src: client, Dst: inside, ICMPType: 8}, false, 0},
		{"egress matches the destination", true, Packet{Protocol: UDP, Src: client, Dst: inside, DstPort: 53}, true, 50},
		{"egress outside the block refused", true, Packet{Protocol: UDP, Src: inside, Dst: client, DstPort: 53}, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := acl.Evaluate(tt.egress, tt.p)
			if v.Allowed != tt.allowed || v.Rule != tt.rule {
				t.Errorf("%s: got %s, want allowed=%v rule %d", tt.p, v, tt.allowed, tt.rule)
			}
		})
	}
}

func TestFromResourcesAndExchange(t *testing.T) {
	ref := cft.Ref
	res := []*cft.Resource{
		{Name: "Acl", Type: "AWS::EC2::NetworkAcl"},
		{Name: "Web", Type: "AWS::EC2::Subnet", Properties: map[string]any{"CidrBlock": "10.0.0.0/24"}},
		{Name: "Free", Type: "AWS::EC2::Subnet", Properties: map[string]any{"CidrBlock": "10.0.1.0/24"}},
		{Name: "Assoc", Type: "AWS::EC2::SubnetNetworkAclAssociation", Properties: map[string]any{"SubnetId": ref("Web"), "NetworkAclId": ref("Acl")}},
		{Name: "In", Type: "AWS::EC2::NetworkAclEntry", Properties: map[string]any{"NetworkAclId": ref("Acl"), "RuleNumber": 100,
			"Protocol": 6, "RuleAction": "allow", "Egress": false, "CidrBlock": "0.0.0.0/0", "PortRange": map[string]any{"From": 443, "To": 443}}},
		{Name: "Out", Type: "AWS::EC2::NetworkAclEntry", Properties: map[string]any{"NetworkAclId": ref("Acl"), "RuleNumber": 100.0,
			"Protocol": "6", "RuleAction": "allow", "Egress": "true", "CidrBlock": "0.0.0.0/0", "PortRange": map[string]any{"From": 1024, "To": 65535}}},
	}
	n, err := FromResources(res)
	if err != nil {
		t.Fatal(err)
	}
	if n.Subnets["Free"].ACL != DefaultACL {
		t.Errorf("a subnet without association should have the default ACL")
	}
	web := netip.MustParseAddr("10.0.0.5")
	ok := Packet{Protocol: TCP, Src: client, Dst: web, SrcPort: 50000, DstPort: 443}
	if err := n.Exchange(Leg{Packet: ok, To: "Web"}); err != nil {
		t.Errorf("HTTPS should pass: %v", err)
	}
	// The reply of a connection to a low client port is refused by the egress rule.
	low := ok
	low.SrcPort = 1000
	if err := n.Exchange(Leg{Packet: low, To: "Web"}); err == nil {
		t.Errorf("reply to port 1000 should be refused")
	}
	bad := ok
	bad.DstPort = 80
	if err := n.Exchange(Leg{Packet: bad, To: "Web"}); err == nil {
		t.Errorf("HTTP should be refused")
	}
	// Inside one subnet no ACL applies.
	if err := n.Exchange(Leg{Packet: bad, From: "Web", To: "Web"}); err != nil {
		t.Errorf("same-subnet traffic: %v", err)
	}
}

func TestFromResourcesErrors(t *testing.T) {
	res := []*cft.Resource{
		{Name: "Acl", Type: "AWS::EC2::NetworkAcl"},
		{Name: "Unresolved", Type: "AWS::EC2::NetworkAclEntry", Properties: map[string]any{"NetworkAclId": cft.Ref("Acl"), "RuleNumber": 1,
			"Protocol": 6, "RuleAction": "allow", "CidrBlock": cft.Sub("10.${ClassB}.0.0/16"), "PortRange": map[string]any{"From": 1, "To": 2}}},
		{Name: "NoPorts", Type: "AWS::EC2::NetworkAclEntry", Properties: map[string]any{"NetworkAclId": cft.Ref("Acl"), "RuleNumber": 2,
			"Protocol": 6, "RuleAction": "allow", "CidrBlock": "0.0.0.0/0"}},
		{Name: "Dangling", Type: "AWS::EC2::NetworkAclEntry", Properties: map[string]any{"NetworkAclId": cft.Ref("Nope")}},
	}
	_, err := FromResources(res)
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"Unresolved: CidrBlock", "NoPorts: PortRange is required", "Dangling.NetworkAclId: Nope is not a network ACL"} {
		if !contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
