package userdata

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apgstack/apgstack/cft"
)

// example returns literal values for one combination of the switches.
func example(banner string, tcp, x11 bool, alt string) Bastion {
	return Bastion{
		StackName: "apgstack-bastion", Region: "eu-west-1", SignalResource: "BastionAutoScalingGroup",
		LogGroup: "apgstack-bastion-BastionMainLogGroup", EIPAllocationID: "eipalloc-0123456789abcdef0",
		EnableBanner: "true", BannerLocation: banner,
		TCPForwardingLine: SSHDLine("AllowTcpForwarding", tcp), X11ForwardingLine: SSHDLine("X11Forwarding", x11),
		EnableX11Forwarding: strconv.FormatBool(x11), AltInitScript: alt,
	}
}

// refs names what each value refers to in the template.
var refs = Bastion{
	StackName: "AWS::StackName", Region: "AWS::Region", SignalResource: "SignalResource",
	LogGroup: "BastionMainLogGroup", EIPAllocationID: "EIP.AllocationId",
	EnableBanner: "EnableBanner", BannerLocation: "BastionBanner",
	TCPForwardingLine: "TCPForwarding", X11ForwardingLine: "X11Forwarding", EnableX11Forwarding: "EnableX11Forwarding",
	AltInitScript: "AltInitScript",
}

// checkShell runs bash -n and shellcheck over a script.
func checkShell(t *testing.T, name, script string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("bash", "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("bash -n %s: %v\n%s", name, err, out)
	}
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Fatalf("shellcheck is required (Debian package shellcheck): %v", err)
	}
	if out, err := exec.Command(sc, "-s", "bash", "-S", "style", path).CombinedOutput(); err != nil {
		t.Fatalf("shellcheck %s: %v\n%s", name, err, out)
	}
}

func TestScriptPassesShellcheckForEverySwitch(t *testing.T) {
	for _, banner := range []string{"default", "s3://example-bucket/banners/bastion.txt"} {
		for _, tcp := range []bool{false, true} {
			for _, x11 := range []bool{false, true} {
				v := example(banner, tcp, x11, "https://example.com/init.sh")
				s, err := Script(v)
				if err != nil {
					t.Fatal(err)
				}
				checkShell(t, "bastion.sh", s)
				for _, want := range []string{
					"\n" + SSHDLine("AllowTcpForwarding", tcp) + "\n",
					"\n" + SSHDLine("X11Forwarding", x11) + "\n",
					"BANNER_LOCATION='" + banner + "'\n",
				} {
					if !strings.Contains(s, want) {
						t.Errorf("banner=%s tcp=%v x11=%v: script lacks %q", banner, tcp, x11, want)
					}
				}
			}
		}
	}
}

func TestEmbeddedShellFilesPassShellcheck(t *testing.T) {
	checkShell(t, "history.sh", historyProfile)
}

// The Fn::Sub body, once CloudFormation substitutes it, is byte for byte the literal script.
func TestSubBodySubstitutesToScript(t *testing.T) {
	body, err := SubBody(refs)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []Bastion{
		example("default", false, false, ""),
		example("s3://b/k", true, true, "http://example.com/x.sh"),
	} {
		want, err := Script(v)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := cft.New("").Evaluate(nil)
		if err != nil {
			t.Fatal(err)
		}
		for name, val := range map[string]string{
			"AWS::StackName": v.StackName, "AWS::Region": v.Region, "SignalResource": v.SignalResource,
			"BastionMainLogGroup": v.LogGroup, "EIP.AllocationId": v.EIPAllocationID,
			"EnableBanner": v.EnableBanner, "BastionBanner": v.BannerLocation, "TCPForwarding": v.TCPForwardingLine,
			"X11Forwarding": v.X11ForwardingLine, "EnableX11Forwarding": v.EnableX11Forwarding, "AltInitScript": v.AltInitScript,
		} {
			ev.Params[name] = val
		}
		got, ok := ev.Resolve(cft.Sub(body)).(string)
		if !ok {
			t.Fatalf("Fn::Sub did not resolve: a ${...} in the body is not a known name")
		}
		if got != want {
			t.Fatalf("substituted body differs from the literal script:\n%s", firstDiff(got, want))
		}
	}
	// Every ${ left in the body is either a reference or an escaped shell expansion.
	for _, name := range cft.SubRefs(body, nil) {
		switch name {
		case "AWS::StackName", "AWS::Region", "SignalResource", "BastionMainLogGroup", "EIP.AllocationId",
			"EnableBanner", "BastionBanner", "TCPForwarding", "X11Forwarding", "EnableX11Forwarding", "AltInitScript":
		default:
			t.Errorf("unexpected Sub reference ${%s}", name)
		}
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) && i < len(bl); i++ {
		if al[i] != bl[i] {
			return "line " + itoa(i+1) + ":\n got  " + al[i] + "\n want " + bl[i]
		}
	}
	return "lengths differ"
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// EC2 refuses user data above 16 KiB before base64.
func TestScriptFitsUserDataLimit(t *testing.T) {
	s, err := Script(example("s3://example-bucket-with-a-long-name/some/deep/key/banner.txt", true, true,
		"https://example.com/"+strings.Repeat("x", 200)))
	if err != nil {
		t.Fatal(err)
	}
	// The limit applies to the raw script; the base64 form is kept under it as well, so that
	// no reading of the limit can refuse it.
	if n := base64.StdEncoding.EncodedLen(len(s)); n > 16*1024 {
		t.Fatalf("user data is %d bytes, %d in base64; EC2 takes 16384", len(s), n)
	}
}

func TestAgentConfigShipsLogsToTheGroup(t *testing.T) {
	s, err := AgentConfig("grp", "AWSQuickStart/stk")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Logs struct {
			LogsCollected struct {
				Files struct {
					CollectList []struct {
						FilePath     string `json:"file_path"`
						LogGroupName string `json:"log_group_name"`
					} `json:"collect_list"`
				} `json:"files"`
			} `json:"logs_collected"`
		} `json:"logs"`
		Metrics struct {
			Namespace string `json:"namespace"`
		} `json:"metrics"`
	}
	if err := json.Unmarshal([]byte(s), &cfg); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range cfg.Logs.LogsCollected.Files.CollectList {
		got[f.FilePath] = f.LogGroupName
	}
	for _, p := range []string{"/var/log/audit/audit.log", "/var/log/secure", HistoryLog} {
		if got[p] != "grp" {
			t.Errorf("%s is not shipped to the log group (got %q)", p, got[p])
		}
	}
	if cfg.Metrics.Namespace != "AWSQuickStart/stk" {
		t.Errorf("namespace %q", cfg.Metrics.Namespace)
	}
}

func TestBadValuesAreRefused(t *testing.T) {
	v := example("default", false, false, "https://example.com/it's.sh")
	if _, err := Script(v); err == nil || !strings.Contains(err.Error(), "AltInitScript") {
		t.Fatalf("a quote in AltInitScript: err = %v", err)
	}
	bad := refs
	bad.Region = "${AWS::Region}"
	if _, err := SubBody(bad); err == nil {
		t.Fatal("a reference holding ${ was accepted")
	}
	if err := checkNoNestedExpansion("x ${a[${i}]} y"); err == nil {
		t.Fatal("nested expansion accepted")
	}
	if err := checkNoNestedExpansion("${a:-b} ${c}"); err != nil {
		t.Fatal(err)
	}
}
