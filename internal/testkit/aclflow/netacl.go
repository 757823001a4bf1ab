// Package aclflow evaluates VPC network ACLs the way EC2 does: entries in rule-number order, the
// first whose protocol, port range (or ICMP type and code) and CIDR block match decides, and no
// match is the implicit deny (rule *). ACLs are stateless, so a connection passes only when its
// packets and their replies each pass the egress ACL of the subnet they leave and the ingress ACL
// of the subnet they enter. The network is read from a template's resolved resources, so tests
// prove the synthesized rules rather than a copy of them.
package aclflow

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"github.com/apgstack/apgstack/cft"
)

// Protocol numbers the ACL entries use.
const (
	All  = -1
	ICMP = 1
	TCP  = 6
	UDP  = 17
)

// Rule is one network ACL entry.
type Rule struct {
	Number   int
	Egress   bool
	Allow    bool
	Protocol int          // -1 is every protocol
	CIDR     netip.Prefix // matched against the source (ingress) or destination (egress)
	FromPort int          // TCP and UDP: destination port range
	ToPort   int
	ICMPType int // ICMP: -1 is every type or code
	ICMPCode int
}

// ACL is one network ACL.
type ACL struct {
	Name  string
	Rules []Rule
}

// Packet is one IP packet as an ACL sees it.
type Packet struct {
	Protocol         int
	Src, Dst         netip.Addr
	SrcPort, DstPort int
	ICMPType         int
	ICMPCode         int
}

// Reply is the packet the destination sends back.
func (p Packet) Reply() Packet {
	r := p
	r.Src, r.Dst = p.Dst, p.Src
	r.SrcPort, r.DstPort = p.DstPort, p.SrcPort
	return r
}

func (p Packet) String() string {
	switch p.Protocol {
	case TCP, UDP:
		name := "tcp"
		if p.Protocol == UDP {
			name = "udp"
		}
		return fmt.Sprintf("%s %s:%d -> %s:%d", name, p.Src, p.SrcPort, p.Dst, p.DstPort)
	case ICMP:
		return fmt.Sprintf("icmp type %d code %d %s -> %s", p.ICMPType, p.ICMPCode, p.Src, p.Dst)
	}
	return fmt.Sprintf("protocol %d %s -> %s", p.Protocol, p.Src, p.Dst)
}

// Verdict is what one ACL decided about one packet.
type Verdict struct {
	ACL     string
	Egress  bool
	Allowed bool
	Rule    int // 0: no entry matched, the implicit deny (rule *)
}

func (v Verdict) String() string {
	dir, action, rule := "ingress", "denied", "*"
	if v.Egress {
		dir = "egress"
	}
	if v.Allowed {
		action = "allowed"
	}
	if v.Rule != 0 {
		rule = strconv.Itoa(v.Rule)
	}
	return fmt.Sprintf("%s by %s %s rule %s", action, v.ACL, dir, rule)
}

// Evaluate decides one packet in one direction.
func (a *ACL) Evaluate(egress bool, p Packet) Verdict {
	peer := p.Src
	if egress {
		peer = p.Dst
	}
	for _, r := range a.Rules {
		if r.Egress != egress || !r.CIDR.Contains(peer) || !r.matches(p) {
			continue
		}
		return Verdict{ACL: a.Name, Egress: egress, Allowed: r.Allow, Rule: r.Number}
	}
	return Verdict{ACL: a.Name, Egress: egress}
}

func (r Rule) matches(p Packet) bool {
	if r.Protocol == All {
		return true
	}
	if r.Protocol != p.Protocol {
		return false
	}
	switch r.Protocol {
	case TCP, UDP:
		return p.DstPort >= r.FromPort && p.DstPort <= r.ToPort
	case ICMP:
		return (r.ICMPType == -1 || r.ICMPType == p.ICMPType) && (r.ICMPCode == -1 || r.ICMPCode == p.ICMPCode)
	}
	return true
}

func (a *ACL) sort() {
	slices.SortStableFunc(a.Rules, func(x, y Rule) int { return cmp.Compare(x.Number, y.Number) })
}

// Subnet is a subnet and the ACL associated with it.
type Subnet struct {
	Name string
	CIDR netip.Prefix
	ACL  *ACL
}

// Network is a VPC's subnets with their ACLs.
type Network struct {
	Subnets map[string]*Subnet
	ACLs    map[string]*ACL
}

// DefaultACL is what a subnet without an association gets: the VPC's default ACL admits all.
var DefaultACL = &ACL{Name: "default", Rules: []Rule{
	{Number: 100, Allow: true, Protocol: All, CIDR: netip.MustParsePrefix("0.0.0.0/0")},
	{Number: 100, Egress: true, Allow: true, Protocol: All, CIDR: netip.MustParsePrefix("0.0.0.0/0")},
}}

// Leg is one packet's way from a subnet to another; "" is outside the VPC (the internet, or an
// AWS service reached through a gateway).
type Leg struct {
	Packet
	From, To string
}

// Send decides a leg: the egress ACL of the subnet it leaves, then the ingress ACL of the one it
// enters. Traffic inside one subnet passes no ACL.
func (n *Network) Send(l Leg) ([]Verdict, error) {
	if l.From == l.To {
		return nil, nil
	}
	var out []Verdict
	for _, step := range []struct {
		subnet string
		egress bool
	}{{l.From, true}, {l.To, false}} {
		if step.subnet == "" {
			continue
		}
		s, ok := n.Subnets[step.subnet]
		if !ok {
			return out, fmt.Errorf("no subnet %q", step.subnet)
		}
		v := s.ACL.Evaluate(step.egress, l.Packet)
		out = append(out, v)
		if !v.Allowed {
			return out, fmt.Errorf("%s (%s -> %s): %s", l.Packet, name(l.From), name(l.To), v)
		}
	}
	return out, nil
}

func name(subnet string) string {
	if subnet == "" {
		return "outside"
	}
	return subnet
}

// Exchange sends a connection's packets along their legs and their replies back the other way;
// nil means the connection works as far as the ACLs are concerned.
func (n *Network) Exchange(legs ...Leg) error {
	for i, l := range legs {
		if _, err := n.Send(l); err != nil {
			return fmt.Errorf("leg %d: %w", i+1, err)
		}
	}
	for i := len(legs) - 1; i >= 0; i-- {
		l := legs[i]
		if _, err := n.Send(Leg{Packet: l.Reply(), From: l.To, To: l.From}); err != nil {
			return fmt.Errorf("reply on leg %d: %w", i+1, err)
		}
	}
	return nil
}

// FromResources reads the network ACLs, their entries, the subnets and the associations from a
// template's resolved resources (cft.Evaluation.Active): every block must be resolved.
func FromResources(resources []*cft.Resource) (*Network, error) {
	n := &Network{Subnets: map[string]*Subnet{}, ACLs: map[string]*ACL{}}
	for _, r := range resources {
		switch r.Type {
		case "AWS::EC2::NetworkAcl":
			n.ACLs[r.Name] = &ACL{Name: r.Name}
		case "AWS::EC2::Subnet":
			p, err := prefix(r.Properties["CidrBlock"])
			if err != nil {
				return nil, fmt.Errorf("%s.CidrBlock: %w", r.Name, err)
			}
			n.Subnets[r.Name] = &Subnet{Name: r.Name, CIDR: p, ACL: DefaultACL}
		}
	}
	var errs []error
	for _, r := range resources {
		switch r.Type {
		case "AWS::EC2::NetworkAclEntry":
			acl, err := n.aclOf(r.Properties["NetworkAclId"])
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.NetworkAclId: %w", r.Name, err))
				continue
			}
			rule, err := entry(r.Properties)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", r.Name, err))
				continue
			}
			acl.Rules = append(acl.Rules, rule)
		case "AWS::EC2::SubnetNetworkAclAssociation":
			acl, err := n.aclOf(r.Properties["NetworkAclId"])
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.NetworkAclId: %w", r.Name, err))
				continue
			}
			sn, _ := cft.RefName(r.Properties["SubnetId"])
			s, ok := n.Subnets[sn]
			if !ok {
				errs = append(errs, fmt.Errorf("%s.SubnetId: not a subnet of this template", r.Name))
				continue
			}
			s.ACL = acl
		}
	}
	for _, a := range n.ACLs {
		a.sort()
	}
	return n, errors.Join(errs...)
}

func (n *Network) aclOf(v any) (*ACL, error) {
	name, ok := cft.RefName(v)
	if !ok {
		return nil, fmt.Errorf("want a Ref to a network ACL of this template, got %v", v)
	}
	a, ok := n.ACLs[name]
	if !ok {
		return nil, fmt.Errorf("%s is not a network ACL of this template", name)
	}
	return a, nil
}

func entry(p map[string]any) (Rule, error) {
	var r Rule
	var err error
	if r.Number, err = integer(p["RuleNumber"]); err != nil {
		return r, fmt.Errorf("RuleNumber: %w", err)
	}
	if r.Protocol, err = integer(p["Protocol"]); err != nil {
		return r, fmt.Errorf("Protocol: %w", err)
	}
	switch p["RuleAction"] {
	case "allow":
		r.Allow = true
	case "deny":
	default:
		return r, fmt.Errorf("RuleAction: %v is neither allow nor deny", p["RuleAction"])
	}
	switch e := p["Egress"].(type) {
	case bool:
		r.Egress = e
	case string:
		r.Egress = e == "true"
	case nil:
	default:
		return r, fmt.Errorf("Egress: %v is not a boolean", e)
	}
	if r.CIDR, err = prefix(p["CidrBlock"]); err != nil {
		return r, fmt.Errorf("CidrBlock: %w", err)
	}
	switch r.Protocol {
	case TCP, UDP:
		pr, _ := p["PortRange"].(map[string]any)
		if pr == nil {
			return r, errors.New("PortRange is required for TCP and UDP")
		}
		if r.FromPort, err = integer(pr["From"]); err != nil {
			return r, fmt.Errorf("PortRange.From: %w", err)
		}
		if r.ToPort, err = integer(pr["To"]); err != nil {
			return r, fmt.Errorf("PortRange.To: %w", err)
		}
	case ICMP:
		ic, _ := p["Icmp"].(map[string]any)
		if ic == nil {
			return r, errors.New("Icmp is required for ICMP")
		}
		if r.ICMPType, err = integer(ic["Type"]); err != nil {
			return r, fmt.Errorf("Icmp.Type: %w", err)
		}
		if r.ICMPCode, err = integer(ic["Code"]); err != nil {
			return r, fmt.Errorf("Icmp.Code: %w", err)
		}
	}
	return r, nil
}

func integer(v any) (int, error) {
	switch x := v.(type) {
	case int:
		return x, nil
	case float64:
		if x == float64(int(x)) {
			return int(x), nil
		}
	case string:
		if i, err := strconv.Atoi(x); err == nil {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%v is not an integer", v)
}

func prefix(v any) (netip.Prefix, error) {
	s, ok := v.(string)
	if !ok {
		return netip.Prefix{}, fmt.Errorf("%v is not resolved to a CIDR block", v)
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%s has host bits set", s)
	}
	return p, nil
}
