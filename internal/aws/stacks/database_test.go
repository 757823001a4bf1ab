package stacks

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/cft"
	"github.com/apgstack/apgstack/cft/schema"
	"github.com/apgstack/apgstack/internal/bootstrap"
	"github.com/apgstack/apgstack/internal/testkit/golden"
)

const (
	testBucket   = "apgstack-artifacts-123456789012"
	testKey      = "apgstack/bootstrap-lambda-0123456789abcdef.zip"
	testSnapshot = "apgstack-final-2026-11-01"
)

// dbCase is a configuration the database stack is checked for.
type dbCase struct {
	name      string
	stage     string
	bootstrap bool
	snapshot  bool
}

var dbCases = []dbCase{
	{"dev", "dev", true, false},
	{"test", "test", false, false},
	{"pre-prod", "pre-prod", true, false},
	{"prod", "prod", true, false},
	{"snapshot", "prod", true, true},
}

func (c dbCase) config(t *testing.T) apgstack.Config {
	t.Helper()
	cfg := apgstack.Default()
	cfg.Environment.Stage = c.stage
	if c.bootstrap {
		cfg.Database.BootstrapS3Bucket, cfg.Database.BootstrapS3Key = testBucket, testKey
	}
	if c.snapshot {
		cfg.Database.SnapshotName = testSnapshot
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("case %s: %v", c.name, err)
	}
	return cfg
}

func buildDB(t *testing.T, cfg apgstack.Config) *Stack {
	t.Helper()
	s, err := Build(cfg, Database)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func explainDB(t *testing.T, c dbCase) *Effective {
	t.Helper()
	e, err := Explain(buildDB(t, c.config(t)))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestDatabaseGolden(t *testing.T) {
	s := buildDB(t, apgstack.Default())
	y, err := s.Template.YAML()
	if err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "database-template.golden.yaml", y)
	for _, c := range dbCases {
		if c.name == "test" {
			continue // the same resources as dev without the bootstrap: covered by the tests below
		}
		t.Run(c.name, func(t *testing.T) {
			out, err := explainDB(t, c).Template().YAML()
			if err != nil {
				t.Fatal(err)
			}
			golden.Assert(t, "database-"+c.name+".golden.yaml", out)
		})
	}
}

// The template is the same for every configuration: the configuration only fills parameters,
// so the template can be launched from the console as it is.
func TestDatabaseTemplateIndependentOfConfiguration(t *testing.T) {
	var first []byte
	for _, c := range dbCases {
		y, err := buildDB(t, c.config(t)).Template.YAML()
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = y
		} else if string(y) != string(first) {
			t.Fatalf("case %s renders a different template", c.name)
		}
	}
}

func TestDatabaseRoundTrips(t *testing.T) {
	tpl := buildDB(t, apgstack.Default()).Template
	for _, render := range []func() ([]byte, error){tpl.YAML, tpl.JSON} {
		b, err := render()
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := cft.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		again, err := parsed.YAML()
		if err != nil {
			t.Fatal(err)
		}
		want, _ := tpl.YAML()
		if string(again) != string(want) {
			t.Fatal("parsing the rendered template and rendering it again changes it")
		}
	}
}

func str(v any) string { return fmt.Sprint(v) }

// TestDatabaseStageSettings evaluates the conditions for every stage and checks the effective
// settings against the best-practice table.
func TestDatabaseStageSettings(t *testing.T) {
	for _, c := range dbCases {
		t.Run(c.name, func(t *testing.T) {
			e := explainDB(t, c)
			want := bestpractice.Stage(c.stage)
			instances := e.OfType("AWS::RDS::DBInstance")
			wantInstances := 1
			if want.Reader {
				wantInstances = 2
			}
			if len(instances) != wantInstances {
				t.Fatalf("instances: got %d, want %d", len(instances), wantInstances)
			}
			for _, in := range instances {
				p := in.Properties
				if got := str(p["MonitoringInterval"]); got != strconv.Itoa(want.MonitoringIntervalSeconds) {
					t.Errorf("%s MonitoringInterval %s, want %d", in.Name, got, want.MonitoringIntervalSeconds)
				}
				_, hasRole := p["MonitoringRoleArn"]
				if hasRole != (want.MonitoringIntervalSeconds > 0) {
					t.Errorf("%s MonitoringRoleArn present=%v with interval %d", in.Name, hasRole, want.MonitoringIntervalSeconds)
				}
				if got := str(p["PerformanceInsightsRetentionPeriod"]); got != strconv.Itoa(want.PerformanceInsightsRetentionDays) {
					t.Errorf("%s PI retention %s, want %d", in.Name, got, want.PerformanceInsightsRetentionDays)
				}
				if got := str(p["AutoMinorVersionUpgrade"]); got != strconv.FormatBool(want.AutoMinorVersionUpgrade) {
					t.Errorf("%s AutoMinorVersionUpgrade %s, want %v", in.Name, got, want.AutoMinorVersionUpgrade)
				}
				if p["EnablePerformanceInsights"] != true || p["PubliclyAccessible"] != false {
					t.Errorf("%s: PI must be on and the instance private: %v", in.Name, p)
				}
			}
			if (e.Resource(dbMonitoringRole) != nil) != (want.MonitoringIntervalSeconds > 0) {
				t.Errorf("monitoring role present=%v with interval %d", e.Resource(dbMonitoringRole) != nil, want.MonitoringIntervalSeconds)
			}
			cl := e.Resource(dbCluster).Properties
			if got := str(cl["BackupRetentionPeriod"]); got != strconv.Itoa(want.BackupRetentionDays) {
				t.Errorf("BackupRetentionPeriod %s, want %d", got, want.BackupRetentionDays)
			}
			if got := str(cl["DeletionProtection"]); got != strconv.FormatBool(want.DeletionProtection) {
				t.Errorf("DeletionProtection %s, want %v", got, want.DeletionProtection)
			}
			wantAlarms := len(bestpractice.Alarms) * (wantInstances)
			if got := len(e.OfType("AWS::CloudWatch::Alarm")); got != wantAlarms {
				t.Errorf("alarms: got %d, want %d", got, wantAlarms)
			}
			if want.Reader {
				r := e.Resource(dbReader)
				if !slices.Contains(r.DependsOn, dbWriter) {
					t.Error("the reader must be created after the writer")
				}
				if str(r.Properties["PromotionTier"]) >= str(e.Resource(dbWriter).Properties["PromotionTier"]) {
					t.Error("the reader must have the lower promotion tier: it is the failover target")
				}
				if reflect.DeepEqual(r.Properties["AvailabilityZone"], e.Resource(dbWriter).Properties["AvailabilityZone"]) {
					t.Error("the reader must be in another AZ")
				}
				ids := e.Resource("DatabaseInstanceEventSubscription").Properties["SourceIds"].([]any)
				if len(ids) != 2 {
					t.Errorf("instance events must watch both instances: %v", ids)
				}
			}
			checkReferences(t, e)
		})
	}
}

// refsIn collects the resource names a resolved value refers to.
func refsIn(v any, out map[string]bool) {
	if name, arg, ok := cft.Intrinsic(v); ok {
		switch name {
		case "Ref":
			if s, _ := arg.(string); !cft.IsPseudo(s) {
				out[s] = true
			}
			return
		case "Fn::GetAtt":
			r, _, _ := cft.GetAttTarget(v)
			out[r] = true
			return
		case "Fn::Sub":
			var s string
			vars := map[string]any{}
			switch a := arg.(type) {
			case string:
				s = a
			case []any:
				s, _ = a[0].(string)
				vars, _ = a[1].(map[string]any)
				refsIn(a[1], out)
			}
			for _, n := range cft.SubRefs(s, vars) {
				n, _, _ = strings.Cut(n, ".")
				if !cft.IsPseudo(n) {
					out[n] = true
				}
			}
			return
		}
	}
	switch x := v.(type) {
	case map[string]any:
		for _, val := range x {
			refsIn(val, out)
		}
	case []any:
		for _, val := range x {
			refsIn(val, out)
		}
	}
}

// checkReferences fails when an effective resource depends on, or refers to, a resource that
// its conditions removed: CloudFormation would reject the stack.
func checkReferences(t *testing.T, e *Effective) {
	t.Helper()
	names := map[string]bool{}
	for _, r := range e.Resources {
		names[r.Name] = true
	}
	for _, r := range e.Resources {
		orig := e.Stack.Template.Resource(r.Name)
		for _, d := range orig.DependsOn {
			if !names[d] {
				t.Errorf("%s DependsOn %s, which this configuration does not create", r.Name, d)
			}
		}
		refs := map[string]bool{}
		refsIn(r.Properties, refs)
		for n := range refs {
			if !names[n] {
				t.Errorf("%s refers to %s, which this configuration does not create", r.Name, n)
			}
		}
	}
	for _, o := range e.Outputs {
		refs := map[string]bool{}
		refsIn(o.Value, refs)
		for n := range refs {
			if !names[n] {
				t.Errorf("output %s refers to %s, which this configuration does not create", o.Name, n)
			}
		}
	}
}

func activeNames(e *Effective) []string {
	var out []string
	for _, r := range e.Resources {
		out = append(out, r.Name)
	}
	sort.Strings(out)
	return out
}

func TestDatabaseSnapshotRestore(t *testing.T) {
	fresh := explainDB(t, dbCase{"prod", "prod", true, false})
	restored := explainDB(t, dbCase{"snapshot", "prod", true, true})
	var gone []string
	for _, n := range activeNames(fresh) {
		if restored.Resource(n) == nil {
			gone = append(gone, n)
		}
	}
	// Everything that holds or uses generated credentials goes: the restored cluster keeps the
	// snapshot's master user and its roles, and nothing is bootstrapped again.
	want := []string{
		"AppOwnerSecret", "AppOwnerSecretAttachment", "AppOwnerSecretResourcePolicy", "AppOwnerSecretRotationSchedule",
		"AppReadOnlySecret", "AppReadOnlySecretAttachment", "AppReadOnlySecretResourcePolicy", "AppReadOnlySecretRotationSchedule",
		"AppReadWriteSecret", "AppReadWriteSecretAttachment", "AppReadWriteSecretResourcePolicy", "AppReadWriteSecretRotationSchedule",
		"AuroraMasterSecret", "AuroraSecretResourcePolicy", "AuroraSecretRotated", "AuroraSecretRotationGate", "AuroraSecretRotationSchedule",
		"DBBootStrapLambdaFn", "DBBootStrapLambdaFnTrigger", "DBBootStrapLambdaLogGroup", "DBBootStrapLambdaRole",
		"DBBootStrapLambdaRoleBootstrapPolicy", "DBBootStrapLambdaVPCAccessPolicy", "SecretAuroraClusterAttachment",
	}
	sort.Strings(gone)
	if !reflect.DeepEqual(gone, want) {
		t.Errorf("resources gone on snapshot restore:\n got %v\nwant %v", gone, want)
	}
	for _, n := range activeNames(restored) {
		if fresh.Resource(n) == nil {
			t.Errorf("%s appears only on snapshot restore", n)
		}
	}
	cl := restored.Resource(dbCluster).Properties
	if cl["SnapshotIdentifier"] != testSnapshot {
		t.Errorf("SnapshotIdentifier %v", cl["SnapshotIdentifier"])
	}
	for _, p := range []string{"MasterUsername", "MasterUserPassword", "DatabaseName", "StorageEncrypted"} {
		if _, ok := cl[p]; ok {
			t.Errorf("a restored cluster inherits %s from the snapshot, yet it is set", p)
		}
	}
	if !reflect.DeepEqual(cl["KmsKeyId"], cft.GetAtt(dbKey, "Arn")) {
		t.Errorf("a restored cluster is encrypted with the stack's key, got KmsKeyId %v", cl["KmsKeyId"])
	}
	for _, o := range restored.Outputs {
		if o.Name == "SecretArn" {
			t.Error("no SecretArn output without a secret")
		}
	}
	if restored.Resource(dbCluster).DeletionPolicy != "Snapshot" {
		t.Error("a restored cluster still takes a final snapshot")
	}
}

// TestDatabaseRotationAfterBootstrap checks the ordering that keeps the bootstrap from reading a
// password that a first rotation is changing.
func TestDatabaseRotationAfterBootstrap(t *testing.T) {
	with := explainDB(t, dbCase{"dev", "dev", true, false})
	without := explainDB(t, dbCase{"test", "test", false, false})
	schedules := func(e *Effective) []*cft.Resource { return e.OfType("AWS::SecretsManager::RotationSchedule") }

	if n := len(schedules(with)); n != 4 {
		t.Fatalf("with the bootstrap: %d rotation schedules, want 4 (master and three roles)", n)
	}
	// One logical id for the master's schedule, whatever the bootstrap switch: it waits for the
	// bootstrap through the gate, whose reference to the bootstrap is under Fn::If.
	master := with.Resource(rotationID(dbMasterSecret))
	if master == nil || !slices.Contains(master.DependsOn, dbRotationGate) || without.Resource(rotationID(dbMasterSecret)) == nil {
		t.Fatalf("the master's schedule %s must exist with and without the bootstrap and wait for the gate", rotationID(dbMasterSecret))
	}
	gateRef := func(e *Effective) any {
		return e.Resource(dbRotationGate).Metadata["apgstack"].(map[string]any)["AfterBootstrap"]
	}
	if got := gateRef(with); !reflect.DeepEqual(got, cft.Ref(dbBootstrap)) {
		t.Errorf("with the bootstrap the gate refers to %v, want Ref %s", got, dbBootstrap)
	}
	if got := gateRef(without); got != "" {
		t.Errorf("without the bootstrap the gate refers to %v, want nothing", got)
	}
	// The application schedules wait for the bootstrap and for the master's rotation to have
	// finished (the wait resource), which itself comes after the master's schedule.
	for _, s := range schedules(with) {
		if s.Name == master.Name {
			continue
		}
		if !slices.Contains(s.DependsOn, dbBootstrap) || !slices.Contains(s.DependsOn, dbMasterRotated) {
			t.Errorf("%s must wait for %s and %s, depends on %v", s.Name, dbBootstrap, dbMasterRotated, s.DependsOn)
		}
	}
	rotated := with.Resource(dbMasterRotated)
	if rotated == nil || !slices.Contains(rotated.DependsOn, master.Name) || rotated.Properties["RotatedSecretArn"] == nil {
		t.Errorf("the rotation wait %s must follow %s and name the master secret: %+v", dbMasterRotated, master.Name, rotated)
	}
	b := with.Resource(dbBootstrap)
	for _, d := range []string{dbWriter, attachmentID(dbMasterSecret)} {
		if !slices.Contains(b.DependsOn, d) {
			t.Errorf("the bootstrap must wait for %s", d)
		}
	}

	ws := schedules(without)
	if len(ws) != 1 || ws[0].Name != rotationID(dbMasterSecret) {
		t.Fatalf("without the bootstrap: want only the master's schedule, got %v", activeNames(without))
	}
	for _, n := range []string{"AppOwnerSecret", dbBootstrap, dbBootstrapFn} {
		if without.Resource(n) != nil {
			t.Errorf("%s exists without the bootstrap", n)
		}
	}
	for _, e := range []*Effective{with, without} {
		for _, s := range schedules(e) {
			p := s.Properties
			if str(p["RotationRules"].(map[string]any)["AutomaticallyAfterDays"]) != strconv.Itoa(bestpractice.RotationDays) {
				t.Errorf("%s rotates every %v days", s.Name, p["RotationRules"])
			}
			h := p["HostedRotationLambda"].(map[string]any)
			wantType := "PostgreSQLMultiUser"
			if p["SecretId"].(map[string]any)["Ref"] == dbMasterSecret {
				wantType = "PostgreSQLSingleUser"
			} else if h["MasterSecretArn"] == nil {
				t.Errorf("%s: multi-user rotation needs the master secret", s.Name)
			}
			if h["RotationType"] != wantType || h["VpcSubnetIds"] == nil || h["VpcSecurityGroupIds"] == nil || h["KmsKeyArn"] == nil {
				t.Errorf("%s: hosted rotation %v", s.Name, h)
			}
			if h["ExcludeCharacters"] != bestpractice.PasswordExcludeCharacters {
				t.Errorf("%s: rotated passwords must exclude %q", s.Name, bestpractice.PasswordExcludeCharacters)
			}
			if h["RotationLambdaName"] == nil {
				t.Errorf("%s: no RotationLambdaName", s.Name)
			}
		}
	}
}

func TestDatabaseBootstrapResource(t *testing.T) {
	cfg := dbCase{"dev", "dev", true, false}.config(t)
	cfg.Database.TolerateBootstrapFailure = true
	s := buildDB(t, cfg)
	e, err := Explain(s)
	if err != nil {
		t.Fatal(err)
	}
	b := e.Resource(dbBootstrap)
	if b.Type != "Custom::DBBootstrap" {
		t.Fatalf("type %s", b.Type)
	}
	// The property names the customresource package reads.
	want := []string{"DBName", "Host", "MasterSecretArn", "OwnerSecretArn", "Port", "ReadOnlySecretArn", "ReadWriteSecretArn",
		"Schema", "ServiceTimeout", "ServiceToken", "TolerateFailure"}
	var got []string
	for k := range b.Properties {
		got = append(got, k)
	}
	sort.Strings(got)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("properties %v, want %v", got, want)
	}
	if b.Properties["TolerateFailure"] != "true" || b.Properties["Schema"] != cfg.Database.SchemaName() || b.Properties["DBName"] != cfg.Database.Name {
		t.Errorf("properties from the configuration: %v", b.Properties)
	}
	fn := e.Resource(dbBootstrapFn).Properties
	if fn["Runtime"] != "provided.al2023" || !reflect.DeepEqual(fn["Architectures"], []any{"arm64"}) || fn["Handler"] != "bootstrap" {
		t.Errorf("function %v", fn)
	}
	if code := fn["Code"].(map[string]any); code["S3Bucket"] != testBucket || code["S3Key"] != testKey {
		t.Errorf("code %v", code)
	}
	// The application secrets' user names are the bootstrap's role names for the schema.
	owner, rw, ro := bootstrap.RoleNames(cfg.Database.SchemaName())
	for i, want := range []string{owner, rw, ro} {
		sec := e.Resource(appSecrets()[i].Logical).Properties
		tmpl := sec["GenerateSecretString"].(map[string]any)["SecretStringTemplate"]
		// The master secret's ARN is known only once it exists: the rest is resolved.
		parts := tmpl.(map[string]any)["Fn::Join"].([]any)[1].([]any)
		if parts[0] != `{"username": "` || parts[1] != want || parts[3] != cfg.Database.Name {
			t.Errorf("secret %d: want username %s and dbname %s in %v", i, want, cfg.Database.Name, parts)
		}
		name := sec["Name"]
		if wantName := bestpractice.SecretName(cfg.Environment.Stage, cfg.Database.StackName) + "/" + want; name != wantName {
			t.Errorf("secret name %v, want %s", name, wantName)
		}
	}
}

func TestDatabaseMasterSecret(t *testing.T) {
	for _, c := range dbCases {
		if c.snapshot {
			continue
		}
		cfg := c.config(t)
		e := explainDB(t, c)
		sec := e.Resource(dbMasterSecret).Properties
		if sec["Name"] != bestpractice.SecretName(c.stage, cfg.Database.StackName) {
			t.Errorf("%s: secret name %v, want %s", c.name, sec["Name"], bestpractice.SecretName(c.stage, cfg.Database.StackName))
		}
		g := sec["GenerateSecretString"].(map[string]any)
		if g["PasswordLength"] != bestpractice.PasswordLength || g["ExcludeCharacters"] != bestpractice.PasswordExcludeCharacters {
			t.Errorf("%s: generation %v", c.name, g)
		}
		if g["SecretStringTemplate"] != `{"username": "`+cfg.Database.Username+`"}` {
			t.Errorf("%s: template %v", c.name, g["SecretStringTemplate"])
		}
		// The cluster names the secret through its deletion-protecting policy, so the policy is
		// removed only after the cluster is gone.
		refs := map[string]bool{}
		refsIn(e.Resource(dbCluster).Properties["MasterUserPassword"], refs)
		if !refs[policyID(dbMasterSecret)] {
			t.Errorf("%s: the cluster must depend on the secret's resource policy", c.name)
		}
		pol := e.Resource(policyID(dbMasterSecret)).Properties["ResourcePolicy"].(map[string]any)["Statement"].([]any)[0].(map[string]any)
		if pol["Effect"] != "Deny" || pol["Action"] != "secretsmanager:DeleteSecret" {
			t.Errorf("%s: resource policy %v", c.name, pol)
		}
	}
}

// TestDatabaseBestPracticeCoverage checks that every entry of the best-practice data reaches the
// template.
func TestDatabaseBestPracticeCoverage(t *testing.T) {
	cfg := dbCase{"prod", "prod", true, false}.config(t)
	cfg.Database.PgauditLog = "ddl,role,write"
	e, err := Explain(buildDB(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	tpl := e.Stack.Template

	t.Run("parameter groups", func(t *testing.T) {
		cp := e.Resource(dbClusterParams).Properties["Parameters"].(map[string]any)
		if len(cp) != len(bestpractice.ClusterParameters) {
			t.Errorf("cluster group has %d entries, best practice %d", len(cp), len(bestpractice.ClusterParameters))
		}
		for _, p := range bestpractice.ClusterParameters {
			if cp[p.Name] != p.Value {
				t.Errorf("cluster parameter %s = %v, want %s", p.Name, cp[p.Name], p.Value)
			}
		}
		ip := e.Resource(dbInstanceParams).Properties["Parameters"].(map[string]any)
		want := bestpractice.InstanceParameterGroup(cfg.Database.PgauditLog)
		if len(ip) != len(want) {
			t.Errorf("instance group has %d entries, best practice %d", len(ip), len(want))
		}
		for _, p := range want {
			if ip[p.Name] != p.Value {
				t.Errorf("instance parameter %s = %v, want %s", p.Name, ip[p.Name], p.Value)
			}
		}
		if tpl.Parameter("PgauditLog").Default != bestpractice.DefaultPgauditLog {
			t.Error("PgauditLog's default must be the best-practice default")
		}
		if !strings.Contains(str(ip["shared_preload_libraries"]), strings.Join(bestpractice.PreloadLibraries, ",")) {
			t.Error("preload libraries")
		}
		fam := e.Resource(dbInstanceParams).Properties["Family"]
		if fam != apgstack.EngineFamily(cfg.Database.EngineVersion) {
			t.Errorf("family %v for %s", fam, cfg.Database.EngineVersion)
		}
	})

	t.Run("alarms", func(t *testing.T) {
		for _, a := range bestpractice.Alarms {
			for _, role := range bestpractice.Roles {
				r := e.Resource(alarmID(a, role))
				if r == nil {
					t.Errorf("no alarm %s for %s", a.Name, role)
					continue
				}
				p := r.Properties
				for k, want := range map[string]any{
					"MetricName": a.MetricName, "Namespace": a.Namespace, "Statistic": a.Statistic,
					"ComparisonOperator": a.Comparison, "Threshold": a.Threshold, "Unit": a.Unit,
					"Period": a.PeriodSeconds, "EvaluationPeriods": a.EvaluationPeriods, "TreatMissingData": a.TreatMissingData,
				} {
					if p[k] != want {
						t.Errorf("%s %s = %v, want %v", r.Name, k, p[k], want)
					}
				}
				dims := p["Dimensions"].([]any)
				if a.RoleDimension {
					if len(dims) != 2 || dims[1].(map[string]any)["Value"] != role || !reflect.DeepEqual(dims[0].(map[string]any)["Value"], cft.Ref(dbCluster)) {
						t.Errorf("%s dimensions %v", r.Name, dims)
					}
				}
				for _, k := range []string{"AlarmActions", "OKActions"} {
					if !reflect.DeepEqual(p[k], []any{cft.Ref(dbTopic)}) {
						t.Errorf("%s %s %v", r.Name, k, p[k])
					}
				}
			}
		}
	})

	t.Run("events", func(t *testing.T) {
		subs := e.OfType("AWS::RDS::EventSubscription")
		if len(subs) != len(bestpractice.EventCategories) {
			t.Errorf("%d subscriptions for %d source types", len(subs), len(bestpractice.EventCategories))
		}
		for _, s := range subs {
			st := str(s.Properties["SourceType"])
			if !reflect.DeepEqual(s.Properties["EventCategories"], anyList(bestpractice.EventCategories[st])) {
				t.Errorf("%s categories %v, want %v", st, s.Properties["EventCategories"], bestpractice.EventCategories[st])
			}
		}
	})

	t.Run("stage mapping", func(t *testing.T) {
		m := tpl.Mapping(dbStageMap)
		if len(m.Values) != len(bestpractice.Stages) || !slices.Equal(apgstack.Stages, bestpractice.StageNames) {
			t.Errorf("mapping has %d stages, best practice %d", len(m.Values), len(bestpractice.Stages))
		}
	})

	t.Run("cluster", func(t *testing.T) {
		cl := e.Resource(dbCluster).Properties
		if !reflect.DeepEqual(cl["EnableCloudwatchLogsExports"], anyList(bestpractice.LogExports)) {
			t.Errorf("log exports %v", cl["EnableCloudwatchLogsExports"])
		}
		if cl["PreferredBackupWindow"] != bestpractice.BackupWindow || cl["PreferredMaintenanceWindow"] != bestpractice.MaintenanceWindow {
			t.Error("windows")
		}
		for k, want := range map[string]any{"CopyTagsToSnapshot": true, "EnableIAMDatabaseAuthentication": true, "StorageEncrypted": true,
			"EngineLifecycleSupport": cfg.Database.EngineLifecycleSupport, "EngineVersion": cfg.Database.EngineVersion} {
			if cl[k] != want {
				t.Errorf("cluster %s = %v, want %v", k, cl[k], want)
			}
		}
		for _, lt := range bestpractice.LogExports {
			g := e.Resource(logGroupID(lt))
			if g == nil || str(g.Properties["RetentionInDays"]) != strconv.Itoa(cfg.Database.LogsRetentionInDays) {
				t.Errorf("log group for %s: %v", lt, g)
			}
		}
		if e.Resource(dbWriter).Properties["PromotionTier"] != bestpractice.WriterPromotionTier ||
			e.Resource(dbReader).Properties["PromotionTier"] != bestpractice.ReaderPromotionTier {
			t.Error("promotion tiers")
		}
	})

	t.Run("tags", func(t *testing.T) {
		checkTags(t, tpl)
	})
}

// checkTags: every resource whose registry schema takes tags carries every mandatory tag, from
// the parameter of the same name.
func checkTags(t *testing.T, tpl *cft.Template) {
	t.Helper()
	for _, r := range tpl.Resources {
		if strings.HasPrefix(r.Type, "Custom::") {
			continue
		}
		s, err := schema.Lookup(r.Type)
		if err != nil {
			t.Errorf("%s: %v", r.Name, err)
			continue
		}
		taggable, prop := s.Taggable()
		if !taggable {
			if _, ok := r.Properties["Tags"]; ok {
				t.Errorf("%s (%s) is not taggable but has Tags", r.Name, r.Type)
			}
			continue
		}
		tags, _ := r.Properties[prop].([]any)
		have, _ := r.Properties[prop].(map[string]any) // AWS Backup takes tags as a map
		if have == nil {
			have = map[string]any{}
		}
		for _, tg := range tags {
			m := tg.(map[string]any)
			have[str(m["Key"])] = m["Value"]
		}
		for _, k := range bestpractice.MandatoryTags {
			if !reflect.DeepEqual(have[k], cft.Ref(k)) {
				t.Errorf("%s (%s): tag %s = %v, want !Ref %s", r.Name, r.Type, k, have[k], k)
			}
		}
	}
}

func TestDatabaseAlarmFallbackWithoutRoleDimension(t *testing.T) {
	alarms := slices.Clone(bestpractice.Alarms)
	for i := range alarms {
		alarms[i].RoleDimension = false
	}
	tpl, err := databaseTemplate(alarms)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range alarms {
		for _, role := range bestpractice.Roles {
			r := tpl.Resource(alarmID(a, role))
			dims := r.Properties["Dimensions"].([]any)
			want := []any{map[string]any{"Name": "DBInstanceIdentifier", "Value": cft.Ref(roleInstance(role))}}
			if !reflect.DeepEqual(dims, want) {
				t.Errorf("%s: dimensions %v, want %v", r.Name, dims, want)
			}
			if !strings.Contains(str(r.Properties["AlarmDescription"]), "no role dimension") {
				t.Errorf("%s: the description must say that the alarm does not follow a failover", r.Name)
			}
		}
	}
}

func TestDatabaseParameterValues(t *testing.T) {
	for _, c := range dbCases {
		s := buildDB(t, c.config(t))
		values := s.ParameterMap()
		for _, p := range s.Template.Parameters {
			v, ok := values[p.Name]
			if !ok {
				if p.Default == nil {
					t.Errorf("%s: parameter %s has neither a value nor a default", c.name, p.Name)
				}
				continue
			}
			if problem := violates(p, v); problem != "" {
				t.Errorf("%s: parameter %s = %q: %s", c.name, p.Name, v, problem)
			}
		}
		for k := range values {
			if s.Template.Parameter(k) == nil {
				t.Errorf("%s: value for unknown parameter %s", c.name, k)
			}
		}
	}
	// The parameter constraints refuse what CloudFormation would refuse.
	tpl := buildDB(t, apgstack.Default()).Template
	for name, bad := range map[string]string{"PgauditLog": "ddl;drop", "DBSchema": "1abc", "DBEngineVersion": "9.6.8", "TolerateBootstrapFailure": "yes"} {
		if violates(tpl.Parameter(name), bad) == "" {
			t.Errorf("parameter %s admits %q", name, bad)
		}
	}
	if violates(tpl.Parameter("PgauditLog"), "DDL, -role") != "" {
		t.Error("PgauditLog refuses what the configuration admits")
	}
}

// violates checks a value against a parameter's constraints (Go's regexp syntax covers the
// patterns used here).
func violates(p *cft.Parameter, v string) string {
	if len(p.AllowedValues) > 0 && !slices.Contains(p.AllowedValues, any(v)) {
		found := false
		for _, a := range p.AllowedValues {
			found = found || str(a) == v
		}
		if !found {
			return "not an allowed value"
		}
	}
	if p.AllowedPattern != "" && !regexp.MustCompile(p.AllowedPattern).MatchString(v) {
		return "does not match " + p.AllowedPattern
	}
	if p.MinLength != nil && len(v) < *p.MinLength || p.MaxLength != nil && len(v) > *p.MaxLength {
		return "length out of range"
	}
	if p.Type == "Number" {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || p.MinValue != nil && n < *p.MinValue || p.MaxValue != nil && n > *p.MaxValue {
			return "number out of range"
		}
	}
	return ""
}

// allowedManagedPolicies are the only AWS managed policies the stack attaches, each made by AWS
// for exactly the job its role does; customer-managed policies of the template are checked like
// inline ones.
var allowedManagedPolicies = map[string]string{
	managedPolicyEnhancedMonitoring: "RDS enhanced monitoring: publish OS metrics to the RDSOSMetrics log group only",
	managedPolicyBackup:             "AWS Backup: snapshot the resources of its plans",
	managedPolicyRestore:            "AWS Backup: restore its recovery points",
}

// wildcardAllowed: EC2's Describe calls take no resource-level permissions, and the ids of the
// network interfaces Lambda creates are Lambda's to choose.
func wildcardAllowed(s map[string]any) bool {
	actions, _ := s["Action"].([]any)
	if a, ok := s["Action"].(string); ok {
		actions = []any{a}
	}
	describeOnly := len(actions) > 0
	for _, a := range actions {
		describeOnly = describeOnly && strings.HasPrefix(str(a), "ec2:Describe")
	}
	if describeOnly {
		return true
	}
	list, ok := s["Resource"].([]any)
	if !ok {
		list = []any{s["Resource"]}
	}
	for _, e := range list {
		if strings.Contains(fmt.Sprint(e), "*") && !strings.Contains(fmt.Sprint(e), ":network-interface/*") {
			return false
		}
	}
	return true
}

// policyProblems lists every IAM policy statement that does not name its actions and resources,
// and every key, topic and secret policy statement that does not name its principals.
func policyProblems(tpl *cft.Template) []string {
	var problems []string
	wild := func(v any) bool {
		switch x := v.(type) {
		case string:
			return x == "*" || strings.Contains(x, "*")
		case []any:
			for _, e := range x {
				if s, ok := e.(string); ok && (s == "*" || strings.Contains(s, "*")) {
					return true
				}
			}
		}
		return false
	}
	statements := func(doc any) []map[string]any {
		var out []map[string]any
		d, _ := doc.(map[string]any)
		list, _ := d["Statement"].([]any)
		for _, s := range list {
			if m, ok := s.(map[string]any); ok {
				out = append(out, m)
			}
		}
		if len(out) == 0 {
			problems = append(problems, fmt.Sprintf("policy without statements: %v", doc))
		}
		return out
	}
	principals := func(where string, doc any) {
		for _, s := range statements(doc) {
			p, ok := s["Principal"].(map[string]any)
			if !ok || len(p) == 0 {
				problems = append(problems, where+": statement without a named principal")
				continue
			}
			for kind, v := range p {
				if v == nil || wild(v) {
					problems = append(problems, fmt.Sprintf("%s: wildcard %s principal %v", where, kind, v))
				}
			}
		}
	}
	for _, r := range tpl.Resources {
		where := r.Name
		switch r.Type {
		case "AWS::IAM::Role":
			principals(where+" trust", r.Properties["AssumeRolePolicyDocument"])
			for _, arn := range r.Properties["ManagedPolicyArns"].([]any) {
				fn, arg, _ := cft.Intrinsic(arn)
				if p := tpl.Resource(str(arg)); fn == "Ref" && p != nil && p.Type == "AWS::IAM::ManagedPolicy" {
					continue
				}
				if _, ok := allowedManagedPolicies[str(arg)]; !ok {
					problems = append(problems, fmt.Sprintf("%s: managed policy %v is not on the allow-list", where, arn))
				}
			}
			pols, _ := r.Properties["Policies"].([]any)
			for _, p := range pols {
				for _, s := range statements(p.(map[string]any)["PolicyDocument"]) {
					if s["Action"] == nil || wild(s["Action"]) {
						problems = append(problems, fmt.Sprintf("%s: action %v is not named", where, s["Action"]))
					}
					if s["Resource"] == nil || wild(s["Resource"]) {
						problems = append(problems, fmt.Sprintf("%s: resource %v is not named", where, s["Resource"]))
					}
				}
			}
		case "AWS::IAM::ManagedPolicy":
			for _, s := range statements(r.Properties["PolicyDocument"]) {
				if s["Action"] == nil || strings.Contains(fmt.Sprint(s["Action"]), "*") {
					problems = append(problems, fmt.Sprintf("%s: action %v is not named", where, s["Action"]))
				}
				if s["Resource"] == nil || wild(s["Resource"]) && !wildcardAllowed(s) {
					problems = append(problems, fmt.Sprintf("%s: resource %v is not named", where, s["Resource"]))
				}
			}
		case "AWS::KMS::Key":
			principals(where, r.Properties["KeyPolicy"])
		case "AWS::SNS::TopicPolicy":
			principals(where, r.Properties["PolicyDocument"])
		case "AWS::SecretsManager::ResourcePolicy":
			principals(where, r.Properties["ResourcePolicy"])
		}
	}
	return problems
}

func TestDatabasePolicies(t *testing.T) {
	tpl := buildDB(t, apgstack.Default()).Template
	for _, p := range policyProblems(tpl) {
		t.Error(p)
	}
	for _, typ := range []string{"AWS::IAM::Role", "AWS::IAM::ManagedPolicy", "AWS::KMS::Key", "AWS::SNS::TopicPolicy", "AWS::SecretsManager::ResourcePolicy"} {
		if len(tpl.ResourcesOfType(typ)) == 0 {
			t.Errorf("no %s checked", typ)
		}
	}
	// The check finds what it is for.
	bad, err := databaseTemplate(bestpractice.Alarms)
	if err != nil {
		t.Fatal(err)
	}
	role := bad.Resource(dbBootstrapRole).Properties
	stmt := role["Policies"].([]any)[0].(map[string]any)["PolicyDocument"].(map[string]any)["Statement"].([]any)
	stmt[0].(map[string]any)["Action"] = "secretsmanager:*"
	stmt[1].(map[string]any)["Resource"] = "*"
	role["ManagedPolicyArns"] = append(role["ManagedPolicyArns"].([]any), "arn:aws:iam::aws:policy/IAMFullAccess")
	key := bad.Resource(dbKey).Properties["KeyPolicy"].(map[string]any)["Statement"].([]any)
	key[1].(map[string]any)["Principal"] = map[string]any{"AWS": "*"}
	if got := len(policyProblems(bad)); got != 4 {
		t.Errorf("the policy check found %d of 4 planted problems: %v", got, policyProblems(bad))
	}
}

// TestDatabaseImportsExist: every value the database stack imports is exported by the network
// or bastion stack of the same configuration.
func TestDatabaseImportsExist(t *testing.T) {
	cfg := dbCase{"prod", "prod", true, false}.config(t)
	exports := map[string]bool{}
	for _, kind := range []string{Network, Bastion} {
		e, err := Explain(buildStack(t, cfg, kind))
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range e.Outputs {
			if o.Export != nil {
				exports[str(o.Export)] = true
			}
		}
	}
	e := explainDB(t, dbCase{"prod", "prod", true, false})
	imports := map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		if name, arg, ok := cft.Intrinsic(v); ok && name == "Fn::ImportValue" {
			imports[str(arg)] = true
			return
		}
		switch x := v.(type) {
		case map[string]any:
			for _, val := range x {
				walk(val)
			}
		case []any:
			for _, val := range x {
				walk(val)
			}
		}
	}
	for _, r := range e.Resources {
		walk(r.Properties)
	}
	if len(imports) != 4 {
		t.Errorf("imports %v", imports)
	}
	for name := range imports {
		if !exports[name] {
			t.Errorf("the database stack imports %s, which neither the network nor the bastion stack exports", name)
		}
	}
}

func buildStack(t *testing.T, cfg apgstack.Config, kind string) *Stack {
	t.Helper()
	s, err := Build(cfg, kind)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRotationLambdaNames: the hosted rotation functions are named after the stack's UUID, so the
// name fits Lambda's 64 characters for any stack name CloudFormation allows (128 characters).
func TestRotationLambdaNames(t *testing.T) {
	stackID := "arn:aws:cloudformation:eu-west-1:123456789012:stack/" + strings.Repeat("s", 128) + "/01234567-89ab-cdef-0123-456789abcdef"
	for _, r := range SecretRoles() {
		ev, err := cft.New("").Evaluate(map[string]string{cft.StackId: stackID})
		if err != nil {
			t.Fatal(err)
		}
		got := ev.Resolve(rotationLambdaName(r.Role))
		name, ok := got.(string)
		if !ok || len(name) > 64 || !strings.HasPrefix(name, "apg-01234567-89ab-cdef-0123-456789abcdef-") {
			t.Errorf("%s: RotationLambdaName %v (%d characters), want apg-<uuid>-%s within 64", r.Role, got, len(name), r.Role)
		}
	}
}

// TestDatabaseUpdatableFromSampleParameters: the parameters apgstack added to the sample's have
// defaults, so a stack created from the sample updates with its previous parameter values.
func TestDatabaseUpdatableFromSampleParameters(t *testing.T) {
	tpl, err := databaseTemplate(bestpractice.Alarms)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"DBSchema", "EngineLifecycleSupport", "PgauditLog", "TolerateBootstrapFailure", "LogsRetentionInDays"} {
		p := tpl.Parameter(name)
		if p == nil || p.Default == nil {
			t.Errorf("%s: no default: %+v", name, p)
			continue
		}
		if msg := violates(p, fmt.Sprint(p.Default)); msg != "" {
			t.Errorf("%s: default %v violates its own constraints: %s", name, p.Default, msg)
		}
	}
}

// TestDatabaseSecretsProtectedWithCluster: every secret's deletion protection lasts as long as the
// cluster — the cluster refers to each resource policy, so CloudFormation deletes the policies
// only after the cluster — and the KMS alias is retained with its key.
func TestDatabaseSecretsProtectedWithCluster(t *testing.T) {
	with := explainDB(t, dbCase{"dev", "dev", true, false})
	without := explainDB(t, dbCase{"test", "test", false, false})
	c := with.Resource(dbCluster)
	var want []any
	for _, s := range appSecrets() {
		want = append(want, cft.Ref(policyID(s.Logical)))
	}
	if got := c.Metadata["apgstack"].(map[string]any)["SecretsProtectedUntilDeleted"]; !reflect.DeepEqual(got, want) {
		t.Errorf("cluster refers to %v, want the three application secrets' policies %v", got, want)
	}
	if !strings.Contains(fmt.Sprint(c.Properties["MasterUserPassword"]), policyID(dbMasterSecret)) {
		t.Errorf("the cluster must refer to the master secret's policy %s", policyID(dbMasterSecret))
	}
	if m := without.Resource(dbCluster).Metadata["apgstack"].(map[string]any); m["SecretsProtectedUntilDeleted"] != nil {
		t.Errorf("without the bootstrap the cluster refers to %v", m)
	}
	for _, e := range []*Effective{with, without} {
		if a := e.Resource(dbKeyAlias); a == nil || a.DeletionPolicy != "Retain" {
			t.Errorf("the KMS alias must be retained with its key: %+v", a)
		}
	}
}
