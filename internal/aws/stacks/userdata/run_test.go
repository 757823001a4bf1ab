package userdata

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// These tests run the rendered script for real, as root, in a private mount namespace: /etc (a
// copy), /var/log, /var/lib, /usr/local/sbin, /opt, /root and /home are bind-mounted from a
// temporary directory, so the script writes its files there and the machine is untouched. The
// programs that would reach AWS or change the system (dnf, systemctl, cfn-signal, aws, curl,
// sshd, augenrules, sleep) are fakes that record how they were called.

// fakeCommands is one multi-call fake; its behaviour is chosen by the name it is called by and
// by FAIL_CMD (a name that fails) and NEEDS_REBOOT.
const fakeCommands = `#!/bin/bash
name=$(basename "$0")
printf '%s %s\n' "$name" "$*" >>"$CALLS"
if [ "$name" = "${FAIL_CMD:-}" ]; then exit 1; fi
case "$name" in
  dnf) if [ "$1" = needs-restarting ]; then exit "${NEEDS_REBOOT:-0}"; fi ;;
  curl)
    case "$*" in
      *api/token*) echo token ;;
      *meta-data/instance-id*) echo i-0123456789abcdef0 ;;
      *) out=""; while [ $# -gt 0 ]; do if [ "$1" = -o ]; then out=$2; fi; shift; done
         if [ -n "$out" ]; then echo 'echo alt-init-ran >>"$CALLS"' >"$out"; fi ;;
    esac ;;
  aws)
    case "$*" in
      *describe-addresses*|*describe-instances*) echo 198.51.100.7 ;;
      "s3 cp"*) for last; do :; done; echo "banner from s3" >"$last" ;;
    esac ;;
  sshd) grep -q '^AllowTcpForwarding' /etc/ssh/sshd_config.d/50-apgstack.conf ;;
esac
exit 0
`

type sandbox struct {
	dir, calls string
}

func newSandbox(t *testing.T) *sandbox {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("running the bootstrap needs root (a private mount namespace)")
	}
	if err := exec.Command("unshare", "-m", "--propagation", "private", "true").Run(); err != nil {
		t.Skipf("running the bootstrap needs unshare -m (CAP_SYS_ADMIN): %v", err)
	}
	dir := t.TempDir()
	s := &sandbox{dir: dir, calls: filepath.Join(dir, "calls.log")}
	for _, d := range []string{"bin", "var/log", "var/lib", "usr/local/sbin", "root", "home/ec2-user",
		"opt/aws/amazon-cloudwatch-agent/etc", "opt/aws/amazon-cloudwatch-agent/bin"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fake := filepath.Join(dir, "bin", "fake")
	if err := os.WriteFile(fake, []byte(fakeCommands), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"dnf", "systemctl", "cfn-signal", "aws", "curl", "sshd", "augenrules", "sleep", "psql"} {
		if err := os.Symlink(fake, filepath.Join(dir, "bin", name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(fake, filepath.Join(dir, "opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl")); err != nil {
		t.Fatal(err)
	}
	// A copy of /etc with what Amazon Linux has and Debian lacks: ec2-user, the audit rules
	// with "-a task,never", an sshd drop-in directory.
	if out, err := exec.Command("cp", "-a", "/etc", filepath.Join(dir, "etc")).CombinedOutput(); err != nil {
		t.Fatalf("copy /etc: %v\n%s", err, out)
	}
	s.write(t, "etc/passwd", s.read(t, "etc/passwd")+"ec2-user:x:1000:1000::/home/ec2-user:/bin/bash\n")
	s.write(t, "etc/group", s.read(t, "etc/group")+"ec2-user:x:1000:\n")
	s.write(t, "etc/audit/rules.d/audit.rules", "-D\n-b 8192\n-a task,never\n")
	for _, d := range []string{"etc/ssh/sshd_config.d", "etc/rsyslog.d", "etc/profile.d", "etc/skel", "etc/systemd/system"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func (s *sandbox) read(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dir, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (s *sandbox) write(t *testing.T, rel, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(filepath.Join(s.dir, rel)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, rel), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// run runs a script (a path inside the sandbox as the namespace sees it) with arguments.
func (s *sandbox) run(t *testing.T, env []string, script string, args ...string) error {
	t.Helper()
	var mounts []string
	for _, d := range []string{"etc", "var/log", "var/lib", "usr/local/sbin", "opt", "root", "home"} {
		mounts = append(mounts, "mount --bind "+filepath.Join(s.dir, d)+" /"+d)
	}
	argv := append([]string{"-m", "--propagation", "private", "bash", "-c",
		strings.Join(mounts, " && ") + ` && exec bash "$0" "$@"`, script}, args...)
	cmd := exec.Command("unshare", argv...)
	cmd.Env = append([]string{"PATH=" + filepath.Join(s.dir, "bin") + ":/usr/sbin:/usr/bin:/sbin:/bin", "CALLS=" + s.calls}, env...)
	out, err := cmd.CombinedOutput()
	t.Logf("bootstrap output:\n%s", out)
	return err
}

func (s *sandbox) script(t *testing.T, v Bastion) string {
	t.Helper()
	text, err := Script(v)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(s.dir, "user-data.sh")
	if err := os.WriteFile(path, []byte(text), 0o700); err != nil {
		t.Fatal(err)
	}
	return path
}

func (s *sandbox) callLines(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(s.calls)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func signals(lines []string) []string {
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, "cfn-signal ") {
			out = append(out, l)
		}
	}
	return out
}

func TestBootstrapConfiguresAndSignalsSuccess(t *testing.T) {
	s := newSandbox(t)
	v := example("default", true, false, "https://example.com/init.sh")
	if err := s.run(t, nil, s.script(t, v)); err != nil {
		t.Fatalf("bootstrap failed: %v", err)
	}
	calls := s.callLines(t)
	want := "cfn-signal -e 0 --reason bastion ready --stack apgstack-bastion --resource BastionAutoScalingGroup --region eu-west-1"
	if got := signals(calls); len(got) != 1 || got[0] != want {
		t.Fatalf("signals %q, want exactly %q", got, want)
	}
	if calls[len(calls)-1] != want {
		t.Errorf("the success signal is not the last step: %q", calls[len(calls)-1])
	}
	for _, c := range []string{
		"dnf -y --releasever=latest upgrade",
		"aws ec2 associate-address --region eu-west-1 --allocation-id eipalloc-0123456789abcdef0 --instance-id i-0123456789abcdef0 --allow-reassociation --output text",
		"augenrules --load",
		"sshd -t",
		"systemctl restart sshd",
		"alt-init-ran",
		"amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s -c file:/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json",
	} {
		if !contains(calls, c) {
			t.Errorf("no call %q", c)
		}
	}
	if contains(calls, "systemctl reboot") {
		t.Error("rebooted although no reboot was needed")
	}
	conf := s.read(t, "etc/ssh/sshd_config.d/50-apgstack.conf")
	if conf != "AllowTcpForwarding yes\nX11Forwarding no\nPermitRootLogin no\nPasswordAuthentication no\nBanner /etc/ssh/apgstack-banner\n" {
		t.Errorf("50-apgstack.conf:\n%s", conf)
	}
	if got := s.read(t, "etc/ssh/apgstack-banner"); got != defaultBanner {
		t.Errorf("banner:\n%s", got)
	}
	if got := s.read(t, "etc/audit/rules.d/audit.rules"); strings.Contains(got, "\n-a task,never") {
		t.Errorf("task,never still on:\n%s", got)
	}
	if got := s.read(t, "etc/audit/rules.d/50-apgstack.rules"); !strings.Contains(got, "-a always,exit -F arch=b64 -S execve") {
		t.Errorf("audit rules:\n%s", got)
	}
	for _, f := range []string{"etc/skel/.psqlrc", "home/ec2-user/.psqlrc"} {
		got := s.read(t, f)
		for _, want := range []string{`\timing on`, `\pset null '(null)'`, `\set ON_ERROR_ROLLBACK interactive`, `%M`, `%/`} {
			if !strings.Contains(got, want) {
				t.Errorf("%s lacks %s", f, want)
			}
		}
	}
	if st, err := os.Stat(filepath.Join(s.dir, "home/ec2-user/.psqlrc")); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("ec2-user .psqlrc: %v %v", st, err)
	}
	var agent map[string]any
	if err := json.Unmarshal([]byte(s.read(t, "opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json")), &agent); err != nil {
		t.Errorf("agent configuration: %v", err)
	}
	if got := s.read(t, "etc/rsyslog.d/50-apgstack.conf"); !strings.Contains(got, HistoryLog) {
		t.Errorf("rsyslog:\n%s", got)
	}
	if got := s.read(t, "etc/profile.d/apgstack-history.sh"); got != historyProfile {
		t.Error("history profile differs from history.sh")
	}
	if _, err := os.Stat(filepath.Join(s.dir, "var/lib/apgstack-bastion/done")); err != nil {
		t.Error(err)
	}
	if !strings.Contains(s.read(t, "var/log/apgstack-bastion-bootstrap.log"), "answers on 198.51.100.7") {
		t.Error("the bootstrap log does not show the Elastic IP check")
	}
}

// When the upgrade needs a reboot, the first run installs the one-shot unit and reboots without
// signalling; the unit's run finishes and signals success.
func TestBootstrapRebootsAndSignalsAfterTheReboot(t *testing.T) {
	s := newSandbox(t)
	v := example("s3://example-bucket/banner.txt", false, false, "")
	if err := s.run(t, []string{"NEEDS_REBOOT=1"}, s.script(t, v)); err != nil {
		t.Fatalf("first boot: %v", err)
	}
	calls := s.callLines(t)
	if got := signals(calls); len(got) != 0 {
		t.Fatalf("signalled before the reboot: %q", got)
	}
	for _, c := range []string{"systemctl enable apgstack-bastion-bootstrap.service", "systemctl reboot"} {
		if !contains(calls, c) {
			t.Errorf("no call %q", c)
		}
	}
	if contains(calls, "sshd -t") {
		t.Error("configured before the reboot")
	}
	unit := s.read(t, "etc/systemd/system/apgstack-bastion-bootstrap.service")
	for _, want := range []string{"ExecStart=/usr/local/sbin/apgstack-bastion-bootstrap configure", "ConditionPathExists=!/var/lib/apgstack-bastion/done", "WantedBy=multi-user.target"} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q:\n%s", want, unit)
		}
	}
	if st, err := os.Stat(filepath.Join(s.dir, "usr/local/sbin/apgstack-bastion-bootstrap")); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("installed bootstrap: %v %v", st, err)
	}

	// After the reboot systemd runs the installed copy.
	if err := s.run(t, nil, "/usr/local/sbin/apgstack-bastion-bootstrap", "configure"); err != nil {
		t.Fatalf("after the reboot: %v", err)
	}
	calls = s.callLines(t)
	if got := signals(calls); len(got) != 1 || !strings.HasPrefix(got[0], "cfn-signal -e 0 ") {
		t.Fatalf("signals %q, want one success", got)
	}
	for _, c := range []string{"systemctl disable apgstack-bastion-bootstrap.service",
		"aws s3 cp --only-show-errors --region eu-west-1 s3://example-bucket/banner.txt /etc/ssh/apgstack-banner"} {
		if !contains(calls, c) {
			t.Errorf("no call %q", c)
		}
	}
	if got := s.read(t, "etc/ssh/apgstack-banner"); got != "banner from s3\n" {
		t.Errorf("banner %q", got)
	}
}

// Any failing step signals failure, with the line, and stops the bootstrap.
func TestBootstrapSignalsFailure(t *testing.T) {
	for failing, command := range map[string]string{
		"augenrules": ": augenrules --load;",
		"sshd":       ": sshd -t;",
		"aws":        ": retry aws ec2 associate-address --region",
	} {
		t.Run(failing, func(t *testing.T) {
			s := newSandbox(t)
			err := s.run(t, []string{"FAIL_CMD=" + failing}, s.script(t, example("default", false, false, "")))
			if err == nil {
				t.Fatal("the bootstrap succeeded although a step failed")
			}
			got := signals(s.callLines(t))
			if len(got) == 0 || !strings.HasPrefix(got[0], "cfn-signal -e 1 --reason bootstrap phase patch failed at line ") {
				t.Fatalf("signals %q, want a failure first", got)
			}
			if !strings.Contains(got[0], command) {
				t.Errorf("the failure signal %q does not name the failing command %q", got[0], command)
			}
			for _, g := range got {
				if strings.HasPrefix(g, "cfn-signal -e 0") {
					t.Fatalf("success signalled after a failure: %q", got)
				}
			}
			if _, err := os.Stat(filepath.Join(s.dir, "var/lib/apgstack-bastion/done")); err == nil {
				t.Error("marked done after a failure")
			}
		})
	}
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}
