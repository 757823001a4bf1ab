package apgstack

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestDefaultIsValid(t *testing.T) {
	cfg := Default()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
}

// TestValidateConstraints has one case per constraint: each error names the field, the value and
// what is allowed.
// TestUsernamesAllowed: names RDS accepts for the master user pass, among them postgres, the RDS
// console's default.
func TestUsernamesAllowed(t *testing.T) {
	for _, name := range []string{"postgres", "Postgres", "dbadmin", "master_1"} {
		c := Default()
		c.Database.Username = name
		if err := c.Validate(); err != nil {
			t.Errorf("username %q: %v", name, err)
		}
	}
}

func TestValidateConstraints(t *testing.T) {
	tests := []struct {
		field   string
		value   string
		allowed string // a fragment of the allowed-values text
	}{
		{"network.classB", "256", "from 0 to 255"},
		{"network.classB", "-1", "from 0 to 255"},
		{"network.stackName", "1network", "a letter, then letters, digits and '-'"},
		{"network.stackName", strings.Repeat("a", 129), "128 characters at most"},
		{"bastion.stackName", "bad_name", "a letter, then letters, digits and '-'"},
		{"database.stackName", "", "stack name"},
		{"bastion.remoteAccessCIDR", "10.0.0.0", "x.x.x.x/x"},
		{"bastion.remoteAccessCIDR", "300.0.0.0/8", "x.x.x.x/x"},
		{"bastion.remoteAccessCIDR", "10.0.0.1/8", "no host bits"},
		{"database.name", "1db", "a letter, then letters, digits and '_', 64 characters at most"},
		{"database.name", strings.Repeat("d", 65), "64 characters at most"},
		{"database.port", "1149", "from 1150 to 65535"},
		{"database.port", "65536", "from 1150 to 65535"},
		{"database.username", "admin-user", "16 characters at most"},
		{"database.username", "averyveryverylongname", "16 characters at most"},
		{"database.username", "rdsadmin", "a name RDS does not reserve"},
		{"database.username", "rdsadmin", "a name RDS does not reserve"},
		{"environment.stage", "staging", "one of dev, test, pre-prod, prod"},
		{"environment.application", "App1", "letters and spaces"},
		{"environment.applicationVersion", "1.0 beta", "letters, digits, '.' and '-'"},
		{"environment.projectCostCenter", "CC-1", "letters and digits only"},
		{"environment.serviceOwnersEmailContact", "owner@", "a valid e-mail address"},
		{"environment.notificationList", "not-an-address", "a valid e-mail address"},
		{"environment.confidentiality", "secret", "one of public, private, confidential, pii/phi"},
		{"environment.compliance", "pci", "one of hipaa, sox, fips, other, none"},
		{"bastion.logsRetentionInDays", "2", "one of 1, 3, 5, 7, 14"},
		{"network.flowLogsRetentionInDays", "10", "one of 1, 3, 5, 7, 14"},
		{"database.engineVersion", "13.7", "one of 13.20"},
		{"database.instanceClass", "db.r5.large", "one of db.t4g.medium"},
		{"bastion.instanceType", "t2.micro", "one of t3.micro"},
		{"bastion.tenancy", "host", "one of dedicated, default"},
		{"bastion.banner", "http://example.com/banner", "s3://"},
		{"bastion.altInitScript", "ftp://x", "a URL beginning with http"},
		{"bastion.altInitScript", "https://x/a b.sh", "no white space or quotes"},
		{"bastion.banner", "s3://bucket/it's", "no white space or quotes"},
		{"bastion.osImageOverride", "ubuntu", "an AMI id"},
		{"database.bootstrapS3Key", "k.zip", "set together with database.bootstrapS3Bucket"},
		{"database.engineLifecycleSupport", "yes", "one of open-source-rds-extended-support-disabled"},
		{"database.pgauditLog", "ddl,everything", "pgaudit classes"},
		{"database.schema", strings.Repeat("s", 52), "51 characters at most: the owner's rotation identity <schema>_owner_clone must fit in 63"},
		{"database.schema", "1abc", "a letter, then letters, digits and '_'"},
		{"target.kind", "gcp", "one of local, aws"},
		{"target.aws.region", "Europe", "a Region name"},
		{"target.local.readerPort", "80", "from 1150 to 65535"},
		{"target.local.rotationInterval", "soon", "Go duration"},
		{"target.local.metricsPort", "80", "from 1024 to 65535"},
		{"target.local.smtpFrom", "me", "an e-mail address"},
		{"target.local.alarmThresholds.Disk", "5", "an alarm name (CPU, MaxUsedTxIDs, FreeLocalStorage)"},
	}
	for _, tc := range tests {
		t.Run(tc.field+"="+tc.value, func(t *testing.T) {
			cfg := Default()
			if err := cfg.Set(tc.field, tc.value); err != nil {
				t.Fatalf("set: %v", err)
			}
			err := cfg.Validate()
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("want a ValidationError, got %v", err)
			}
			var found *FieldError
			for i := range ve.Errors {
				if ve.Errors[i].Field == tc.field {
					found = &ve.Errors[i]
				}
			}
			if found == nil {
				t.Fatalf("no error names %s: %v", tc.field, err)
			}
			msg := found.Error()
			if !strings.Contains(msg, tc.field) || !strings.Contains(msg, tc.value) || !strings.Contains(msg, tc.allowed) {
				t.Fatalf("message %q must name the field, the value %q and what is allowed (%q)", msg, tc.value, tc.allowed)
			}
		})
	}
}

func TestValidateReportsEveryError(t *testing.T) {
	cfg := Default()
	cfg.Network.ClassB = 300
	cfg.Database.Port = 1
	cfg.Environment.Stage = "qa"
	err := cfg.Validate()
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Errors) != 3 {
		t.Fatalf("want 3 errors reported together, got %v", err)
	}
}

func TestInitYAMLRoundTripsEveryField(t *testing.T) {
	cfg := Default()
	cfg.Bastion.EnableTCPForwarding = true
	cfg.Target.Local.ReaderPort = 6543
	cfg.Target.Local.AlarmThresholds = map[string]float64{"CPU": 50, "FreeLocalStorage": 1e18}
	out, err := InitYAML(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var back Config
	if err := Parse(out, &back); err != nil {
		t.Fatalf("init output does not parse: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(back, cfg) {
		t.Fatalf("init output does not hold the configuration:\n got %+v\nwant %+v", back, cfg)
	}
	for _, path := range FieldPaths() {
		leaf := path[strings.LastIndex(path, ".")+1:]
		if !strings.Contains(string(out), leaf+":") {
			t.Errorf("init output lacks %s", path)
		}
	}
}

func TestLoadPrecedence(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "apgstack.yaml")
	if err := os.WriteFile(path, []byte("database:\n  port: 6000\n  name: FromFile\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, true, []string{"APGSTACK_DATABASE_PORT=7000", "APGSTACK_LIVE_AWS=1", "HOME=/x"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Database.Port != 7000 {
		t.Errorf("environment must override the file: port %d", cfg.Database.Port)
	}
	if cfg.Database.Name != "FromFile" {
		t.Errorf("file must override defaults: name %q", cfg.Database.Name)
	}
	if cfg.Database.Username != Default().Database.Username {
		t.Errorf("defaults must fill the rest: username %q", cfg.Database.Username)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("database:\n  prot: 6000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bad, true, nil); err == nil || !strings.Contains(err.Error(), "prot") {
		t.Errorf("an unknown key must be an error naming it, got %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml"), true, nil); err == nil {
		t.Error("a named file that does not exist must be an error")
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml"), false, nil); err != nil {
		t.Errorf("the default file may be absent: %v", err)
	}
	_, err := Load(filepath.Join(dir, "missing.yaml"), false, []string{"APGSTACK_DATABASE_PORT=abc"})
	if err == nil || !strings.Contains(err.Error(), "APGSTACK_DATABASE_PORT") || !strings.Contains(err.Error(), "abc") {
		t.Errorf("a bad environment value must name the variable and value, got %v", err)
	}
}

func TestBastionArch(t *testing.T) {
	for typ, want := range map[string]string{"t3.micro": "x86_64", "t4g.small": "arm64", "m7g.large": "arm64", "m7i.large": "x86_64"} {
		if got := BastionArch(typ); got != want {
			t.Errorf("BastionArch(%s) = %s, want %s", typ, got, want)
		}
	}
}

func TestAlarmThresholdsFromEnvironmentAndFlags(t *testing.T) {
	cfg, err := Load(filepath.Join(t.TempDir(), "none.yaml"), false, []string{"APGSTACK_TARGET_LOCAL_METRICSPORT=9187"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Set("target.local.alarmThresholds.CPU", "42.5"); err != nil {
		t.Fatal(err)
	}
	if cfg.Target.Local.MetricsPort != 9187 || cfg.Target.Local.AlarmThresholds["CPU"] != 42.5 {
		t.Fatalf("metricsPort %d, thresholds %v", cfg.Target.Local.MetricsPort, cfg.Target.Local.AlarmThresholds)
	}
	if err := cfg.Set("target.local.alarmThresholds.CPU", "lots"); err == nil || !strings.Contains(err.Error(), "a number") {
		t.Fatalf("want an error saying a number is needed, got %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}
