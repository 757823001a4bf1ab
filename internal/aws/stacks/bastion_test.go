package stacks

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/cft"
	"github.com/apgstack/apgstack/internal/aws/stacks/userdata"
	"github.com/apgstack/apgstack/internal/testkit/golden"
)

func buildBastionFor(t *testing.T, edit func(*apgstack.Config)) (*Stack, apgstack.Config) {
	t.Helper()
	cfg := apgstack.Default()
	if edit != nil {
		edit(&cfg)
	}
	s, err := Build(cfg, Bastion)
	if err != nil {
		t.Fatal(err)
	}
	return s, cfg
}

func TestBastionGolden(t *testing.T) {
	s, _ := buildBastionFor(t, nil)
	y, err := s.Template.YAML()
	if err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "bastion.golden.yaml", y)
	// CreateStack takes a TemplateBody of 51,200 bytes at most; above that it needs S3.
	if len(y) > 51200 {
		t.Errorf("the template is %d bytes, over CloudFormation's 51,200-byte TemplateBody", len(y))
	}
	again, _ := buildBastionFor(t, nil)
	y2, _ := again.Template.YAML()
	if string(y) != string(y2) {
		t.Fatal("two builds of the bastion template differ")
	}
}

// The sample's parameters keep their names, types, defaults, constraints, labels and groups.
func TestBastionParametersKeepTheSample(t *testing.T) {
	s, _ := buildBastionFor(t, nil)
	tpl := s.Template
	want := []struct {
		name, typ string
		def       any
		label     string
	}{
		{"ParentVPCStack", "String", nil, ""},
		{"RemoteAccessCIDR", "String", nil, "Allowed Bastion External Access CIDR"},
		{"KeyPairName", "AWS::EC2::KeyPair::KeyName", nil, "Key Pair Name"},
		{"BastionInstanceType", "String", "t3.micro", "Bastion Instance Type"},
		{"LogsRetentionInDays", "Number", 14, ""},
		{"NotificationList", "String", nil, "SNS Notification Email"},
		{"BastionTenancy", "String", "default", "Bastion Tenancy"},
		{"EnableBanner", "String", "true", "Enable Banner"},
		{"BastionBanner", "String", "default", "Bastion Banner"},
		{"EnableTCPForwarding", "String", "false", "Enable TCP Forwarding"},
		{"EnableX11Forwarding", "String", "false", "Enable X11 Forwarding"},
		{"AltInitScript", "String", "", "Custom Bootstrap Script"},
		{"OSImageOverride", "String", "", "AMI override"},
	}
	if len(tpl.Parameters) != len(want) {
		t.Errorf("%d parameters, want %d", len(tpl.Parameters), len(want))
	}
	for _, w := range want {
		p := tpl.Parameter(w.name)
		if p == nil {
			t.Errorf("parameter %s missing", w.name)
			continue
		}
		if p.Type != w.typ || !reflect.DeepEqual(p.Default, w.def) {
			t.Errorf("%s: type %s default %#v, want %s %#v", w.name, p.Type, p.Default, w.typ, w.def)
		}
		if w.label != "" && tpl.Interface.ParameterLabels[w.name] != w.label {
			t.Errorf("%s: label %q, want %q", w.name, tpl.Interface.ParameterLabels[w.name], w.label)
		}
	}
	if got := tpl.Parameter("BastionInstanceType").AllowedValues; !reflect.DeepEqual(got, anyStrings(apgstack.BastionInstanceTypes)) {
		t.Errorf("BastionInstanceType allows %v", got)
	}
	for _, name := range []string{"EnableBanner", "EnableTCPForwarding", "EnableX11Forwarding"} {
		if got := tpl.Parameter(name).AllowedValues; !reflect.DeepEqual(got, []any{"true", "false"}) {
			t.Errorf("%s allows %v", name, got)
		}
	}
	groups := map[string][]string{}
	for _, g := range tpl.Interface.ParameterGroups {
		groups[g.Label] = g.Parameters
	}
	for label, first := range map[string][]string{
		"Network Configuration":       {"ParentVPCStack", "RemoteAccessCIDR"},
		"Amazon EC2 Configuration":    {"KeyPairName", "BastionInstanceType", "LogsRetentionInDays", "NotificationList"},
		"Linux Bastion Configuration": {"BastionTenancy", "EnableBanner", "BastionBanner", "EnableTCPForwarding", "EnableX11Forwarding"},
	} {
		if g := groups[label]; len(g) < len(first) || !slices.Equal(g[:len(first)], first) {
			t.Errorf("group %q = %v, want it to start with %v", label, g, first)
		}
	}
	// Every default satisfies its own parameter's constraints (CloudFormation refuses it otherwise).
	for _, p := range tpl.Parameters {
		if p.Default == nil {
			continue
		}
		d := fmt.Sprint(p.Default)
		if p.AllowedPattern != "" && !regexp.MustCompile(p.AllowedPattern).MatchString(d) {
			t.Errorf("%s: default %q does not match %s", p.Name, d, p.AllowedPattern)
		}
		if p.AllowedValues != nil && !slices.ContainsFunc(p.AllowedValues, func(v any) bool { return fmt.Sprint(v) == d }) {
			t.Errorf("%s: default %q not among %v", p.Name, d, p.AllowedValues)
		}
	}
}

func TestBastionParameterValuesComeFromTheConfiguration(t *testing.T) {
	s, cfg := buildBastionFor(t, func(c *apgstack.Config) {
		c.Bastion.InstanceType = "t4g.small"
		c.Bastion.EnableTCPForwarding = true
		c.Bastion.AltInitScript = "https://example.com/init.sh"
	})
	got := s.ParameterMap()
	want := map[string]string{
		"ParentVPCStack": cfg.Network.StackName, "RemoteAccessCIDR": cfg.Bastion.RemoteAccessCIDR,
		"KeyPairName": cfg.Bastion.KeyPairName, "BastionInstanceType": "t4g.small",
		"LogsRetentionInDays": strconv.Itoa(cfg.Bastion.LogsRetentionInDays), "NotificationList": cfg.Environment.NotificationList,
		"BastionTenancy": "default", "EnableBanner": "true", "BastionBanner": "default",
		"EnableTCPForwarding": "true", "EnableX11Forwarding": "false",
		"AltInitScript": "https://example.com/init.sh", "OSImageOverride": "",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parameters\n got %v\nwant %v", got, want)
	}
	if s.Name != cfg.Bastion.StackName {
		t.Errorf("stack name %q", s.Name)
	}
	// Every parameter the template declares gets a value, and each value passes its constraints.
	for _, p := range s.Template.Parameters {
		v, ok := got[p.Name]
		if !ok {
			t.Errorf("no value for %s", p.Name)
		}
		if p.AllowedPattern != "" && !regexp.MustCompile(p.AllowedPattern).MatchString(v) {
			t.Errorf("%s=%q does not match %s", p.Name, v, p.AllowedPattern)
		}
	}
}

func TestBastionRefusesValuesTheBootstrapCannotQuote(t *testing.T) {
	for _, c := range []struct {
		field string
		edit  func(*apgstack.Config)
	}{
		{"bastion.banner", func(c *apgstack.Config) { c.Bastion.Banner = "s3://bucket/it's.txt" }},
		{"bastion.altInitScript", func(c *apgstack.Config) { c.Bastion.AltInitScript = "https://example.com/a b.sh" }},
	} {
		cfg := apgstack.Default()
		c.edit(&cfg)
		_, err := Build(cfg, Bastion)
		if err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: err = %v, want an error naming the field", c.field, err)
		}
	}
}

// evaluate decides the template for the stack's parameter values, with example values for the
// resource attributes the user data refers to.
func evaluateBastion(t *testing.T, s *Stack) *cft.Evaluation {
	t.Helper()
	values := s.ParameterMap()
	values[cft.StackName] = s.Name
	values[cft.Region] = "eu-west-1"
	ev, err := s.Template.Evaluate(values)
	if err != nil {
		t.Fatal(err)
	}
	ev.Params[bastionLogGroup] = s.Name + "-BastionMainLogGroup"
	ev.Params[bastionEIP+".AllocationId"] = "eipalloc-0123456789abcdef0"
	return ev
}

func activeResource(t *testing.T, ev *cft.Evaluation, name string) *cft.Resource {
	t.Helper()
	for _, r := range ev.Active() {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("resource %s not created", name)
	return nil
}

// userDataScript is the script the instance receives: Fn::Sub done, before base64.
func userDataScript(t *testing.T, ev *cft.Evaluation) string {
	t.Helper()
	lt := activeResource(t, ev, bastionLT)
	data := lt.Properties["LaunchTemplateData"].(map[string]any)
	name, arg, ok := cft.Intrinsic(data["UserData"])
	if !ok || name != "Fn::Base64" {
		t.Fatalf("UserData is not Fn::Base64: %#v", data["UserData"])
	}
	script, ok := arg.(string)
	if !ok {
		t.Fatalf("user data did not resolve to a string: %#v", arg)
	}
	return script
}

func shellcheck(t *testing.T, script string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "user-data.sh")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("bash", "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Fatalf("shellcheck is required (Debian package shellcheck): %v", err)
	}
	if out, err := exec.Command(sc, "-s", "bash", "-S", "style", path).CombinedOutput(); err != nil {
		t.Fatalf("shellcheck: %v\n%s", err, out)
	}
}

// The script CloudFormation hands to the instance — after Fn::Sub, for every combination of the
// banner and forwarding switches — passes bash -n and shellcheck, and writes the sshd settings
// the parameters ask for.
func TestBastionUserDataForEverySwitch(t *testing.T) {
	for _, banner := range []string{"default", "s3://example-bucket/banners/bastion.txt"} {
		for _, tcp := range []bool{false, true} {
			for _, x11 := range []bool{false, true} {
				name := fmt.Sprintf("banner=%s,tcp=%v,x11=%v", banner, tcp, x11)
				t.Run(name, func(t *testing.T) {
					s, cfg := buildBastionFor(t, func(c *apgstack.Config) {
						c.Bastion.Banner, c.Bastion.EnableTCPForwarding, c.Bastion.EnableX11Forwarding = banner, tcp, x11
					})
					script := userDataScript(t, evaluateBastion(t, s))
					shellcheck(t, script)

					sshd := sshdConfig(t, script)
					want := []string{userdata.SSHDLine("AllowTcpForwarding", tcp), userdata.SSHDLine("X11Forwarding", x11),
						"PermitRootLogin no", "PasswordAuthentication no"}
					if !reflect.DeepEqual(sshd, want) {
						t.Errorf("50-apgstack.conf = %q, want %q", sshd, want)
					}
					for _, line := range []string{
						"BANNER_LOCATION='" + banner + "'",
						"ENABLE_BANNER='true'",
						"X11_FORWARDING='" + strconv.FormatBool(x11) + "'",
						"STACK_NAME='" + cfg.Bastion.StackName + "'",
						"EIP_ALLOCATION_ID='eipalloc-0123456789abcdef0'",
						"SIGNAL_RESOURCE='" + bastionASG + "'",
					} {
						if !strings.Contains(script, "\n"+line+"\n") {
							t.Errorf("script lacks %q", line)
						}
					}
					// What the template yields is what the renderer gives for the same values.
					literal, err := userdata.Script(userdata.Bastion{
						StackName: cfg.Bastion.StackName, Region: "eu-west-1", SignalResource: bastionASG,
						LogGroup: cfg.Bastion.StackName + "-BastionMainLogGroup", EIPAllocationID: "eipalloc-0123456789abcdef0",
						EnableBanner: "true", BannerLocation: banner,
						TCPForwardingLine: userdata.SSHDLine("AllowTcpForwarding", tcp), X11ForwardingLine: userdata.SSHDLine("X11Forwarding", x11),
						EnableX11Forwarding: strconv.FormatBool(x11),
					})
					if err != nil {
						t.Fatal(err)
					}
					if literal != script {
						t.Error("the template's user data differs from userdata.Script for the same values")
					}
				})
			}
		}
	}
}

// sshdConfig extracts the here-document the script writes to 50-apgstack.conf.
func sshdConfig(t *testing.T, script string) []string {
	t.Helper()
	m := regexp.MustCompile(`(?s)cat >"\$conf" <<'EOF'\n(.*?)\nEOF\n`).FindStringSubmatch(script)
	if m == nil || !strings.Contains(script, "conf=/etc/ssh/sshd_config.d/50-apgstack.conf") {
		t.Fatal("the script does not write /etc/ssh/sshd_config.d/50-apgstack.conf")
	}
	return strings.Split(m[1], "\n")
}

func TestBastionHasNoLaunchConfigurationNorImageID(t *testing.T) {
	s, _ := buildBastionFor(t, nil)
	y, _ := s.Template.YAML()
	j, _ := s.Template.JSON()
	for _, text := range []string{string(y), string(j)} {
		if strings.Contains(text, "AWS::AutoScaling::LaunchConfiguration") || strings.Contains(text, "LaunchConfigurationName") {
			t.Error("the template uses a launch configuration")
		}
		if id := regexp.MustCompile(`ami-[0-9a-f]{8,17}\b`).FindString(text); id != "" {
			t.Errorf("hard-coded image id %s", id)
		}
	}
}

// The image is the current Amazon Linux 2023 of the instance type's architecture, unless
// OSImageOverride names one.
func TestBastionImageFollowsTheArchitecture(t *testing.T) {
	for _, c := range []struct{ instanceType, override, want string }{
		{"t3.micro", "", "{{resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64}}"},
		{"m7i.large", "", "{{resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64}}"},
		{"t4g.small", "", "{{resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64}}"},
		{"m7g.xlarge", "", "{{resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64}}"},
		{"t3.micro", "ami-0123456789abcdef0", "ami-0123456789abcdef0"},
	} {
		s, _ := buildBastionFor(t, func(cfg *apgstack.Config) {
			cfg.Bastion.InstanceType, cfg.Bastion.OSImageOverride = c.instanceType, c.override
		})
		lt := activeResource(t, evaluateBastion(t, s), bastionLT)
		got := lt.Properties["LaunchTemplateData"].(map[string]any)["ImageId"]
		if got != c.want {
			t.Errorf("%s override %q: ImageId %v, want %s", c.instanceType, c.override, got, c.want)
		}
	}
	m := func() *cft.Mapping { s, _ := buildBastionFor(t, nil); return s.Template.Mapping(bastionArchMapping) }()
	for _, it := range apgstack.BastionInstanceTypes {
		if m.Values[it]["Arch"] != apgstack.BastionArch(it) {
			t.Errorf("mapping %s -> %v", it, m.Values[it]["Arch"])
		}
	}
}

func TestBastionLaunchTemplateIsHardened(t *testing.T) {
	s, _ := buildBastionFor(t, func(c *apgstack.Config) { c.Bastion.Tenancy = "dedicated" })
	data := activeResource(t, evaluateBastion(t, s), bastionLT).Properties["LaunchTemplateData"].(map[string]any)
	md := data["MetadataOptions"].(map[string]any)
	if md["HttpTokens"] != "required" || md["HttpPutResponseHopLimit"].(int) > 2 {
		t.Errorf("metadata options %v: IMDSv2 must be required with a hop limit of 1 or 2", md)
	}
	for _, bd := range data["BlockDeviceMappings"].([]any) {
		ebs := bd.(map[string]any)["Ebs"].(map[string]any)
		if ebs["Encrypted"] != true || ebs["VolumeType"] != "gp3" {
			t.Errorf("volume %v is not an encrypted gp3", ebs)
		}
	}
	nic := data["NetworkInterfaces"].([]any)[0].(map[string]any)
	if nic["AssociatePublicIpAddress"] != true {
		t.Error("no public address at launch")
	}
	if data["Placement"].(map[string]any)["Tenancy"] != "dedicated" {
		t.Errorf("tenancy %v", data["Placement"])
	}
	if _, ok := data["SecurityGroupIds"]; ok {
		t.Error("security groups belong on the network interface when one is given")
	}
}

func TestBastionAutoScalingGroup(t *testing.T) {
	s, _ := buildBastionFor(t, nil)
	asg := activeResource(t, evaluateBastion(t, s), bastionASG)
	p := asg.Properties
	if p["MinSize"] != "1" || p["MaxSize"] != "1" || p["DesiredCapacity"] != "1" {
		t.Errorf("sizes %v %v %v, want exactly one instance", p["MinSize"], p["MaxSize"], p["DesiredCapacity"])
	}
	subnets := fmt.Sprint(p["VPCZoneIdentifier"])
	for _, az := range []string{"A", "B", "C"} {
		if !strings.Contains(subnets, "${ParentVPCStack}-Subnet"+az+"Public") && !strings.Contains(subnets, s.ParameterMap()["ParentVPCStack"]+"-Subnet"+az+"Public") {
			t.Errorf("public subnet %s missing from %s", az, subnets)
		}
	}
	tag := p["Tags"].([]any)[0].(map[string]any)
	if tag["Key"] != "Name" || tag["PropagateAtLaunch"] != true {
		t.Errorf("Name tag %v", tag)
	}
	if _, ok := p["LaunchConfigurationName"]; ok {
		t.Error("launch configuration")
	}
	nc := p["NotificationConfigurations"].([]any)[0].(map[string]any)
	// Every scaling event (cdk-nag AwsSolutions-AS3).
	if !reflect.DeepEqual(nc["NotificationTypes"], []any{"autoscaling:EC2_INSTANCE_LAUNCH", "autoscaling:EC2_INSTANCE_LAUNCH_ERROR",
		"autoscaling:EC2_INSTANCE_TERMINATE", "autoscaling:EC2_INSTANCE_TERMINATE_ERROR"}) {
		t.Errorf("notifications %v", nc["NotificationTypes"])
	}
	if rs := asg.CreationPolicy["ResourceSignal"].(map[string]any); rs["Count"] != 1 || rs["Timeout"] != bastionSignalWait {
		t.Errorf("creation policy %v", rs)
	}
	ru := asg.UpdatePolicy["AutoScalingRollingUpdate"].(map[string]any)
	if ru["MinInstancesInService"] != 0 || ru["MaxBatchSize"] != 1 || ru["WaitOnResourceSignals"] != true || ru["PauseTime"] == nil {
		t.Errorf("rolling update %v", ru)
	}
	alarm := activeResource(t, evaluateBastion(t, s), bastionCPUAlarm).Properties
	if alarm["Statistic"] != "Average" || alarm["Period"] != 600 || alarm["Threshold"] != 80 || alarm["ComparisonOperator"] != "GreaterThanThreshold" {
		t.Errorf("CPU alarm %v", alarm)
	}
}

func TestBastionSSHMetricKeepsItsName(t *testing.T) {
	s, _ := buildBastionFor(t, nil)
	mf := activeResource(t, evaluateBastion(t, s), bastionMetric).Properties
	tr := mf["MetricTransformations"].([]any)[0].(map[string]any)
	if mf["FilterPattern"] != "USER_LOGIN" || tr["MetricName"] != "SSHCommandCount" || tr["MetricNamespace"] != "AWSQuickStart/"+s.Name {
		t.Errorf("metric filter %v", mf)
	}
	lg := activeResource(t, evaluateBastion(t, s), bastionLogGroup).Properties
	if lg["RetentionInDays"] != "14" || lg["KmsKeyId"] == nil {
		t.Errorf("log group %v", lg)
	}
}

func TestBastionSecurityGroupAdmitsOnlyTheAllowedCIDR(t *testing.T) {
	s, cfg := buildBastionFor(t, nil)
	sg := activeResource(t, evaluateBastion(t, s), bastionSG).Properties
	var got []string
	for _, r := range sg["SecurityGroupIngress"].([]any) {
		m := r.(map[string]any)
		if m["CidrIp"] != cfg.Bastion.RemoteAccessCIDR {
			t.Errorf("ingress from %v", m["CidrIp"])
		}
		got = append(got, fmt.Sprintf("%v/%v-%v", m["IpProtocol"], m["FromPort"], m["ToPort"]))
	}
	if !reflect.DeepEqual(got, []string{"tcp/22-22", "icmp/-1--1"}) {
		t.Errorf("ingress %v", got)
	}
}

// policyStatements walks every policy document of the evaluated template: the role's inline
// policies, its trust policy and the key policy.
func policyStatements(t *testing.T, ev *cft.Evaluation) map[string][]map[string]any {
	out := map[string][]map[string]any{}
	add := func(where string, doc any) {
		for _, st := range doc.(map[string]any)["Statement"].([]any) {
			out[where] = append(out[where], st.(map[string]any))
		}
	}
	role := activeResource(t, ev, bastionRole).Properties
	// The role's permissions are customer-managed policies (externalizePolicies), named
	// <role><PolicyName>: keyed here by the policy's name in kebab case, as written inline.
	for _, a := range role["ManagedPolicyArns"].([]any) {
		name, ok := cft.RefName(a)
		if !ok {
			continue
		}
		p := activeResource(t, ev, name)
		add("policy "+kebab(strings.TrimPrefix(name, bastionRole)), p.Properties["PolicyDocument"])
	}
	add("trust", role["AssumeRolePolicyDocument"])
	add("key", activeResource(t, ev, bastionKey).Properties["KeyPolicy"])
	return out
}

func TestBastionPoliciesNameTheirActions(t *testing.T) {
	s, _ := buildBastionFor(t, func(c *apgstack.Config) { c.Bastion.Banner = "s3://example-bucket/banner.txt" })
	ev := evaluateBastion(t, s)
	statements := policyStatements(t, ev)
	if _, ok := statements["policy bastion-banner-policy"]; !ok {
		t.Error("no s3:GetObject for the S3 banner")
	}
	for where, sts := range statements {
		for _, st := range sts {
			var actions []any
			switch a := st["Action"].(type) {
			case string:
				actions = []any{a}
			case []any:
				actions = a
			}
			if len(actions) == 0 {
				t.Errorf("%s %v: no action named", where, st["Sid"])
			}
			for _, a := range actions {
				// The key policy's account statement is the one KMS place where kms:* is right.
				if a == "*" || (strings.HasSuffix(a.(string), ":*") && !(where == "key" && st["Sid"] == "AccountAdministers")) {
					t.Errorf("%s %v: wildcard action %v", where, st["Sid"], a)
				}
			}
			if p, ok := st["Principal"]; ok && (p == "*" || strings.Contains(fmt.Sprint(p), "AWS:*")) {
				t.Errorf("%s %v: wildcard principal", where, st["Sid"])
			}
			// "*" resources only for actions without resource-level permissions.
			if st["Resource"] == "*" && where != "key" {
				for _, a := range actions {
					if !slices.Contains([]any{"ec2:DescribeAddresses", "ec2:DescribeInstances", "cloudwatch:PutMetricData"}, a) {
						t.Errorf("%s: %v on *", where, a)
					}
				}
			}
		}
	}
	role := activeResource(t, ev, bastionRole).Properties
	// One AWS managed policy (Session Manager); the rest are the stack's own.
	aws := 0
	for _, a := range role["ManagedPolicyArns"].([]any) {
		if _, own := cft.RefName(a); !own {
			aws++
		}
	}
	if got := fmt.Sprint(role["ManagedPolicyArns"]); !strings.Contains(got, "AmazonSSMManagedInstanceCore") || strings.Contains(got, "IAMFullAccess") || aws != 1 {
		t.Errorf("managed policies %s", got)
	}
	if role["Policies"] != nil {
		t.Errorf("inline policies remain: %v", role["Policies"])
	}
	// Without an S3 banner the role reads nothing from S3.
	plain, _ := buildBastionFor(t, nil)
	if _, ok := policyStatements(t, evaluateBastion(t, plain))["policy bastion-banner-policy"]; ok {
		t.Error("s3:GetObject granted without an S3 banner")
	}
}

func TestBastionKeyLetsThePublishersEncrypt(t *testing.T) {
	s, _ := buildBastionFor(t, nil)
	ev := evaluateBastion(t, s)
	key := activeResource(t, ev, bastionKey).Properties
	if key["EnableKeyRotation"] != true {
		t.Error("key rotation off")
	}
	principals := map[string]string{}
	for _, st := range policyStatements(t, ev)["key"] {
		principals[st["Sid"].(string)] = fmt.Sprint(st["Principal"])
		if st["Sid"] == "CloudWatchLogsForTheBastionLogGroup" && st["Condition"] == nil {
			t.Error("the logs service may use the key for any log group")
		}
	}
	for sid, want := range map[string]string{
		"AccountAdministers":                  ":root",
		"CloudWatchLogsForTheBastionLogGroup": "logs.eu-west-1.amazonaws.com",
		"CloudWatchAlarmsPublish":             "cloudwatch.amazonaws.com",
		"AutoScalingNotificationsPublish":     "autoscaling.amazonaws.com",
	} {
		if !strings.Contains(principals[sid], want) {
			t.Errorf("key statement %s principal %q, want %s", sid, principals[sid], want)
		}
	}
	topic := activeResource(t, ev, bastionTopic).Properties
	if topic["KmsMasterKeyId"] == nil {
		t.Error("topic not encrypted")
	}
	if sub := fmt.Sprint(topic["Subscription"]); !strings.Contains(sub, "dba@example.com") {
		t.Errorf("subscription %s", sub)
	}
}

func TestBastionOutputsKeepTheirExports(t *testing.T) {
	s, cfg := buildBastionFor(t, nil)
	ev := evaluateBastion(t, s)
	outs := map[string]*cft.Output{}
	for _, o := range ev.ActiveOutputs() {
		outs[o.Name] = o
	}
	for name, export := range map[string]string{
		"TemplateID": "", "BastionAutoScalingGroup": "BastionAutoScalingGroup", "EIP": "EIP", "SSHCommand": "",
		"CloudWatchLogs": "CloudWatchLogs", "BastionSecurityGroupID": "BastionSecurityGroupID",
		"SessionManagerCommand": "", "SessionManagerPortForwardCommand": "",
	} {
		o, ok := outs[name]
		if !ok {
			t.Errorf("output %s missing", name)
			continue
		}
		if export == "" && o.Export != nil {
			t.Errorf("%s exported as %v", name, o.Export)
		}
		if export != "" && o.Export != cfg.Bastion.StackName+"-"+export {
			t.Errorf("%s exported as %v, want %s-%s", name, o.Export, cfg.Bastion.StackName, export)
		}
	}
	if outs["TemplateID"].Value != "VPC-SSH-Bastion" {
		t.Errorf("TemplateID %v", outs["TemplateID"].Value)
	}
	ssh := fmt.Sprint(s.Template.Output("SSHCommand").Value)
	if !strings.Contains(ssh, "ssh -i \"") || !strings.Contains(ssh, "ec2-user@") {
		t.Errorf("SSHCommand %s", ssh)
	}
	for _, name := range []string{"SessionManagerCommand", "SessionManagerPortForwardCommand"} {
		v := fmt.Sprint(s.Template.Output(name).Value)
		if !strings.Contains(v, "aws ssm start-session") || !strings.Contains(v, "describe-auto-scaling-groups") {
			t.Errorf("%s = %s", name, v)
		}
	}
	if v := fmt.Sprint(s.Template.Output("SessionManagerPortForwardCommand").Value); !strings.Contains(v, "AWS-StartPortForwardingSessionToRemoteHost") {
		t.Errorf("port forwarding %s", v)
	}
}

// kebab turns BastionBannerPolicy back into bastion-banner-policy.
func kebab(s string) string {
	var b strings.Builder
	for i, c := range s {
		if i > 0 && c >= 'A' && c <= 'Z' {
			b.WriteByte('-')
		}
		b.WriteString(strings.ToLower(string(c)))
	}
	return b.String()
}
