package policy

import (
	"fmt"
	"strings"

	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/cft"
)

const (
	dbCluster  = "AWS::RDS::DBCluster"
	dbInstance = "AWS::RDS::DBInstance"
)

var rdsRules = []*Rule{
	{
		ID: "RDS-001", Severity: Error, Title: "Cluster storage is encrypted",
		Rationale: "data, logs, backups and snapshots of an unencrypted cluster are readable by anyone who gets the storage",
		Fix:       "set StorageEncrypted: true (on restore from a snapshot, give KmsKeyId so the restored cluster is encrypted)",
		Source:    "Security Hub RDS.27 (clusters), RDS.3 (instances), RDS.4 (snapshots)",
		Types:     []string{dbCluster, dbInstance},
		check: clusterOrStandalone(func(c *Context, r *cft.Resource) []Violation {
			if _, fromSnap := Prop(r, "SnapshotIdentifier"); fromSnap {
				if _, hasKey := Prop(r, "KmsKeyId"); hasKey {
					return nil
				}
				if v, set := Prop(r, "StorageEncrypted"); set {
					if b, ok, _ := Bool(v); ok && b {
						return nil
					}
				}
				return one(r, "Properties.KmsKeyId", "restored from a snapshot without KmsKeyId: the cluster takes the snapshot's encryption, which the template cannot show")
			}
			return wantTrue(c, r, "StorageEncrypted", "storage encryption")
		}),
	},
	{
		ID: "RDS-002", Severity: Error, Title: "Cluster storage is encrypted with a customer-managed key",
		Rationale: "only a customer-managed key has a key policy you control, can be audited per use and survives the stack so final snapshots stay restorable",
		Fix:       "create an AWS::KMS::Key with rotation on and set KmsKeyId to it",
		Source:    "Aurora User Guide: Encrypting Amazon Aurora resources; Security Hub RDS.27",
		Types:     []string{dbCluster, dbInstance},
		check: clusterOrStandalone(func(c *Context, r *cft.Resource) []Violation {
			v, _ := Prop(r, "KmsKeyId")
			if ok, why := c.customerKey(v); !ok {
				return one(r, "Properties.KmsKeyId", "storage key: %s", why)
			}
			return nil
		}),
	},
	{
		ID: "RDS-003", Severity: Error, Title: "IAM database authentication is on",
		Rationale: "IAM authentication gives short-lived tokens tied to IAM identities instead of long-lived database passwords",
		Fix:       "set EnableIAMDatabaseAuthentication: true",
		Source:    "Security Hub RDS.12 (clusters), RDS.10 (instances)",
		Types:     []string{dbCluster, dbInstance},
		check: clusterOrStandalone(func(c *Context, r *cft.Resource) []Violation {
			return wantTrue(c, r, "EnableIAMDatabaseAuthentication", "IAM database authentication")
		}),
	},
	{
		ID: "RDS-004", Severity: Error, Title: "Deletion protection is on for pre-prod and prod",
		Rationale: "a mistaken stack update, delete or console click must not drop a database that others depend on",
		Fix:       "set DeletionProtection: true, e.g. !If [IsPreProdOrProd, true, false]",
		Source:    "Security Hub RDS.7 (clusters), RDS.8 (instances)",
		Types:     []string{dbCluster, dbInstance},
		Stages:    stagesWhere(func(s bestpractice.StageSettings) bool { return s.DeletionProtection }),
		check: clusterOrStandalone(func(c *Context, r *cft.Resource) []Violation {
			if !c.StageSettings().DeletionProtection {
				return nil
			}
			return wantTrue(c, r, "DeletionProtection", "deletion protection")
		}),
	},
	{
		ID: "RDS-005", Severity: Error, Title: "Backups are kept for the stage's retention",
		Rationale: "point-in-time recovery reaches back only as far as the backup retention",
		Fix:       "set BackupRetentionPeriod to at least the stage's days (see Stages)",
		Source:    "Security Hub RDS.11; README.md#per-stage (the per-stage table)",
		Types:     []string{dbCluster, dbInstance},
		Stages:    "every stage: " + stageValues(func(s bestpractice.StageSettings) string { return fmt.Sprint(s.BackupRetentionDays) }) + " days",
		check: clusterOrStandalone(func(c *Context, r *cft.Resource) []Violation {
			want := c.StageSettings().BackupRetentionDays
			v, set := Prop(r, "BackupRetentionPeriod")
			if !set {
				return one(r, "Properties.BackupRetentionPeriod", "not set: the default is 1 day, the stage needs %d", want)
			}
			n, ok, why := Int(v)
			if !ok {
				return one(r, "Properties.BackupRetentionPeriod", "BackupRetentionPeriod: %s", why)
			}
			if n < want {
				return one(r, "Properties.BackupRetentionPeriod", "%d day(s) is below the %d days the stage needs", n, want)
			}
			return nil
		}),
	},
	{
		ID: "RDS-006", Severity: Error, Title: "Tags are copied to snapshots",
		Rationale: "snapshots without the owner, cost centre and classification tags cannot be attributed or governed",
		Fix:       "set CopyTagsToSnapshot: true on the cluster (and on standalone instances)",
		Source:    "Security Hub RDS.16 (clusters), RDS.17 (instances)",
		Types:     []string{dbCluster, dbInstance},
		check: clusterOrStandalone(func(c *Context, r *cft.Resource) []Violation {
			return wantTrue(c, r, "CopyTagsToSnapshot", "copying tags to snapshots")
		}),
	},
	{
		ID: "RDS-007", Severity: Error, Title: "PostgreSQL logs are exported to CloudWatch Logs",
		Rationale: "logs left on the instance are lost with it and cannot be searched, alarmed on or kept",
		Fix:       "set EnableCloudwatchLogsExports: [postgresql]",
		Source:    "Security Hub RDS.37 (Aurora PostgreSQL), RDS.9",
		Types:     []string{dbCluster, dbInstance},
		check: clusterOrStandalone(func(c *Context, r *cft.Resource) []Violation {
			v, _ := Prop(r, "EnableCloudwatchLogsExports")
			engine, _ := Prop(r, "Engine")
			want := "postgresql"
			if s, _ := engine.(string); s != "" && !strings.Contains(s, "postgres") {
				want = ""
			}
			exports := Strings(v)
			if cft.Unresolved(v) {
				return one(r, "Properties.EnableCloudwatchLogsExports", "%s", Why(v))
			}
			for _, e := range exports {
				if want == "" || e == want {
					return nil
				}
			}
			if want == "" {
				want = "the engine's logs"
			}
			return one(r, "Properties.EnableCloudwatchLogsExports", "%s logs are not exported", want)
		}),
	},
	{
		ID: "RDS-008", Severity: Error, Title: "Enhanced monitoring is on where the stage wants it",
		Rationale: "OS-level metrics at 1-second granularity are what explain a prod incident that 60-second CloudWatch metrics hide",
		Fix:       fmt.Sprintf("set MonitoringInterval to the stage's interval (%d s for prod) and MonitoringRoleArn to a role with AmazonRDSEnhancedMonitoringRole", bestpractice.Stage("prod").MonitoringIntervalSeconds),
		Source:    "Security Hub RDS.6; README.md#per-stage (the per-stage table)",
		Types:     []string{dbInstance},
		Stages:    stagesWhere(func(s bestpractice.StageSettings) bool { return s.MonitoringIntervalSeconds > 0 }),
		check: forEach([]string{dbInstance}, func(c *Context, r *cft.Resource) []Violation {
			want := c.StageSettings().MonitoringIntervalSeconds
			if want == 0 {
				return nil
			}
			v := c.instanceSetting(r, "MonitoringInterval", "MonitoringInterval")
			n, ok, why := Int(v)
			switch {
			case !ok:
				return one(r, "Properties.MonitoringInterval", "MonitoringInterval: %s; the stage wants enhanced monitoring every %d s", why, want)
			case n == 0 || n > want:
				return one(r, "Properties.MonitoringInterval", "MonitoringInterval is %d; the stage wants enhanced monitoring every %d s", n, want)
			}
			if role := c.instanceSetting(r, "MonitoringRoleArn", "MonitoringRoleArn"); role == nil {
				return one(r, "Properties.MonitoringRoleArn", "enhanced monitoring needs MonitoringRoleArn")
			}
			return nil
		}),
	},
	{
		ID: "RDS-009", Severity: Error, Title: "Performance Insights is on",
		Rationale: "database load by wait event and statement is how slow queries and lock contention are found",
		Fix:       "set EnablePerformanceInsights: true on each instance (or PerformanceInsightsEnabled on the cluster)",
		Source:    "Aurora User Guide: Monitoring DB load with Performance Insights",
		Types:     []string{dbInstance},
		check: forEach([]string{dbInstance}, func(c *Context, r *cft.Resource) []Violation {
			v := c.instanceSetting(r, "EnablePerformanceInsights", "PerformanceInsightsEnabled")
			b, ok, why := Bool(v)
			if !ok {
				if v == nil {
					why = "it is not set (off by default)"
				}
				return one(r, "Properties.EnablePerformanceInsights", "EnablePerformanceInsights: %s", why)
			}
			if !b {
				return one(r, "Properties.EnablePerformanceInsights", "Performance Insights is off")
			}
			return nil
		}),
	},
	{
		ID: "RDS-010", Severity: Error, Title: "Performance Insights is encrypted with a customer-managed key",
		Rationale: "Performance Insights keeps statement text, which can hold data; it deserves the same key as the storage",
		Fix:       "set PerformanceInsightsKMSKeyId to the cluster's customer-managed key",
		Source:    "Aurora User Guide: Turning Performance Insights on and off (AWS KMS key); Security Hub RDS.27",
		Types:     []string{dbInstance},
		check: forEach([]string{dbInstance}, func(c *Context, r *cft.Resource) []Violation {
			if c.performanceInsightsOff(r) {
				return nil // RDS-009 reports it
			}
			v := c.instanceSetting(r, "PerformanceInsightsKMSKeyId", "PerformanceInsightsKmsKeyId")
			if ok, why := c.customerKey(v); !ok {
				return one(r, "Properties.PerformanceInsightsKMSKeyId", "Performance Insights key: %s", why)
			}
			return nil
		}),
	},
	{
		ID: "RDS-011", Severity: Error, Title: "Performance Insights keeps the stage's retention",
		Rationale: "a prod regression is found by comparing with last month's load, which the free 7 days do not keep",
		Fix:       "set PerformanceInsightsRetentionPeriod to at least the stage's days (see Stages)",
		Source:    "Aurora User Guide: Performance Insights data retention; README.md#per-stage (the per-stage table)",
		Types:     []string{dbInstance},
		Stages:    "every stage: " + stageValues(func(s bestpractice.StageSettings) string { return fmt.Sprint(s.PerformanceInsightsRetentionDays) }) + " days",
		check: forEach([]string{dbInstance}, func(c *Context, r *cft.Resource) []Violation {
			if c.performanceInsightsOff(r) {
				return nil // RDS-009 reports it
			}
			want := c.StageSettings().PerformanceInsightsRetentionDays
			v := c.instanceSetting(r, "PerformanceInsightsRetentionPeriod", "PerformanceInsightsRetentionPeriod")
			n, ok, why := 7, true, ""
			if v != nil {
				n, ok, why = Int(v)
			}
			if !ok {
				return one(r, "Properties.PerformanceInsightsRetentionPeriod", "PerformanceInsightsRetentionPeriod: %s", why)
			}
			if n < want {
				return one(r, "Properties.PerformanceInsightsRetentionPeriod", "%d days is below the %d days the stage keeps", n, want)
			}
			return nil
		}),
	},
	{
		ID: "RDS-012", Severity: Error, Title: "DB instances are not publicly accessible",
		Rationale: "a database with a public address is one leaked password away from the internet",
		Fix:       "set PubliclyAccessible: false and place the instances in private subnets",
		Source:    "Security Hub RDS.2",
		Types:     []string{dbInstance},
		check: forEach([]string{dbInstance}, func(c *Context, r *cft.Resource) []Violation {
			v, set := Prop(r, "PubliclyAccessible")
			if !set {
				group := c.instanceSetting(r, "DBSubnetGroupName", "DBSubnetGroupName")
				if group == nil {
					return one(r, "Properties.PubliclyAccessible", "not set and no DB subnet group: in the default VPC the instance is public")
				}
				return nil
			}
			b, ok, why := Bool(v)
			if !ok {
				return one(r, "Properties.PubliclyAccessible", "PubliclyAccessible: %s", why)
			}
			if b {
				return one(r, "Properties.PubliclyAccessible", "the instance is publicly accessible")
			}
			return nil
		}),
	},
	{
		ID: "RDS-013", Severity: Error, Title: "The cluster runs in a VPC subnet group with its own security groups",
		Rationale: "without a subnet group and security groups the cluster lands in the default VPC behind the default security group",
		Fix:       "set DBSubnetGroupName (private subnets) and VpcSecurityGroupIds",
		Source:    "Security Hub RDS.18; Aurora User Guide: Amazon VPC and Amazon Aurora",
		Types:     []string{dbCluster, dbInstance},
		check: clusterOrStandalone(func(c *Context, r *cft.Resource) []Violation {
			var out []Violation
			if _, ok := Prop(r, "DBSubnetGroupName"); !ok {
				out = append(out, one(r, "Properties.DBSubnetGroupName", "no DB subnet group: the default VPC's subnets are used")...)
			}
			if _, ok := Prop(r, "VpcSecurityGroupIds"); !ok {
				out = append(out, one(r, "Properties.VpcSecurityGroupIds", "no security group: the VPC's default security group is used")...)
			}
			return out
		}),
	},
	{
		ID: "RDS-014", Severity: Error, Title: "The database security groups admit no address range open to the world",
		Rationale: "the database port must be reachable only from the bastion and the application's security groups",
		Fix:       "admit the DB port from SourceSecurityGroupId only, never from 0.0.0.0/0 or ::/0",
		Source:    "Security Hub EC2.18, EC2.19; Aurora User Guide: Controlling access with security groups",
		Types:     []string{dbCluster, dbInstance, securityGroup, securityGroupIngress},
		check: clusterOrStandalone(func(c *Context, r *cft.Resource) []Violation {
			ids, _ := Prop(r, "VpcSecurityGroupIds")
			var out []Violation
			for _, id := range List(ids) {
				sg := c.Target(id)
				if sg == nil || sg.Type != securityGroup {
					continue
				}
				for _, in := range c.ingressOf(sg) {
					if worldCIDR(in.cidr) {
						out = append(out, Violation{in.resource, in.path, fmt.Sprintf("security group %s of %s admits %v", sg.Name, r.Name, in.cidr)})
					} else if w := Why(in.cidr); w != "" {
						out = append(out, Violation{in.resource, in.path, fmt.Sprintf("security group %s of %s admits a CIDR: %s", sg.Name, r.Name, w)})
					}
				}
			}
			return out
		}),
	},
	{
		ID: "RDS-015", Severity: Error, Title: "Connections must use TLS (rds.force_ssl=1)",
		Rationale: "passwords and data cross the network; the server must refuse unencrypted connections",
		Fix:       "give the cluster a DBClusterParameterGroup with rds.force_ssl: 1",
		Source:    "Aurora User Guide: Securing Aurora PostgreSQL data with SSL/TLS; Security Hub RDS.38 (RDS for PostgreSQL)",
		Types:     []string{dbCluster, "AWS::RDS::DBClusterParameterGroup"},
		check: forEach(clusterTypes, func(c *Context, r *cft.Resource) []Violation {
			engine, _ := Prop(r, "Engine")
			if s, _ := engine.(string); s != "" && !strings.Contains(s, "postgres") {
				return nil
			}
			v, _ := Prop(r, "DBClusterParameterGroupName")
			if v == nil {
				return one(r, "Properties.DBClusterParameterGroupName", "no cluster parameter group: the default group does not require TLS")
			}
			pg := c.Target(v)
			if pg == nil || pg.Type != "AWS::RDS::DBClusterParameterGroup" {
				return one(r, "Properties.DBClusterParameterGroupName", "the cluster parameter group is not declared in this template, so rds.force_ssl cannot be shown to be 1")
			}
			var val any
			if params, ok := Prop(pg, "Parameters"); ok {
				if m, isMap := params.(map[string]any); isMap {
					val = m["rds.force_ssl"]
				}
			}
			s, ok, why := Str(val)
			switch {
			case val == nil:
				return one(pg, "Properties.Parameters.rds.force_ssl", "rds.force_ssl is not set")
			case !ok:
				return one(pg, "Properties.Parameters.rds.force_ssl", "rds.force_ssl: %s", why)
			case s != "1":
				return one(pg, "Properties.Parameters.rds.force_ssl", "rds.force_ssl is %s, not 1", s)
			}
			return nil
		}),
	},
	{
		ID: "RDS-016", Severity: Warning, Title: "The master user is not a well-known name",
		Rationale: "the engine's default administrator name is the first one password-guessing tries",
		Fix:       "set MasterUsername to a name of your own, not postgres, admin or root",
		Source:    "Security Hub RDS.24 (clusters), RDS.25 (instances)",
		Types:     []string{dbCluster, dbInstance},
		check: clusterOrStandalone(func(c *Context, r *cft.Resource) []Violation {
			v, set := Prop(r, "MasterUsername")
			if !set {
				if _, snap := Prop(r, "SnapshotIdentifier"); snap {
					return nil // the snapshot's master user
				}
				return one(r, "Properties.MasterUsername", "not set: the engine's default name is used")
			}
			s, ok, why := Str(v)
			if !ok {
				return one(r, "Properties.MasterUsername", "MasterUsername: %s", why)
			}
			switch strings.ToLower(s) {
			case "postgres", "admin", "root", "administrator", "rdsadmin", "sa":
				return one(r, "Properties.MasterUsername", "%q is a well-known administrator name", s)
			}
			return nil
		}),
	},
	{
		ID: "RDS-017", Severity: Error, Title: "The master password is not written in the template",
		Rationale: "a password in a template or a parameter lands in the stack's history and in every copy of the file",
		Fix:       "generate it into Secrets Manager and set MasterUserPassword to {{resolve:secretsmanager:...}} (or ManageMasterUserPassword: true)",
		Source:    "CloudFormation User Guide: Do not embed credentials in your templates; Aurora User Guide: Password management with Secrets Manager",
		Types:     []string{dbCluster, dbInstance},
		check: clusterOrStandalone(func(c *Context, r *cft.Resource) []Violation {
			if m, ok := Prop(r, "ManageMasterUserPassword"); ok {
				if b, lit, _ := Bool(m); lit && b {
					return nil
				}
			}
			v, set := Prop(r, "MasterUserPassword")
			if !set {
				return nil
			}
			if dynamicRef(v) {
				return nil
			}
			if w := Why(v); w != "" && !cft.Unresolved(v) {
				return one(r, "Properties.MasterUserPassword", "the password is a stack parameter (%s); use a Secrets Manager dynamic reference", strings.SplitN(w, ",", 2)[0])
			}
			return one(r, "Properties.MasterUserPassword", "the password is written in the template; use a Secrets Manager dynamic reference")
		}),
	},
	{
		ID: "RDS-018", Severity: Error, Title: "pre-prod and prod have a reader in a second Availability Zone",
		Rationale: "with a single instance a failure or maintenance means an outage; a reader is the failover target",
		Fix:       "add a second AWS::RDS::DBInstance in the cluster (in another AZ) for pre-prod and prod",
		Source:    "Security Hub RDS.15; Aurora User Guide: High availability for Amazon Aurora",
		Types:     []string{dbCluster, dbInstance},
		Stages:    stagesWhere(func(s bestpractice.StageSettings) bool { return s.Reader }),
		check: forEach(clusterTypes, func(c *Context, r *cft.Resource) []Violation {
			if !c.StageSettings().Reader {
				return nil
			}
			if n := len(c.instancesOf(r)); n < 2 {
				return one(r, "", "the cluster has %d instance(s); the stage needs a writer and a reader in another AZ", n)
			}
			return nil
		}),
	},
	{
		ID: "RDS-019", Severity: Error, Title: "A final snapshot is taken when the cluster is deleted or replaced",
		Rationale: "deleting the stack or a replacing update must not take the data with it",
		Fix:       "set DeletionPolicy: Snapshot and UpdateReplacePolicy: Snapshot on the cluster",
		Source:    "Aurora User Guide: Deleting Aurora DB clusters (final snapshot); CloudFormation DeletionPolicy",
		Types:     []string{dbCluster, dbInstance},
		check: clusterOrStandalone(func(c *Context, r *cft.Resource) []Violation {
			var out []Violation
			keep := func(p string) bool { return p == "Snapshot" || p == "Retain" || p == "RetainExceptOnCreate" }
			if !keep(r.DeletionPolicy) {
				out = append(out, one(r, "DeletionPolicy", "DeletionPolicy is %q: deleting the stack deletes the data", orDefault(r.DeletionPolicy, "Delete"))...)
			}
			if !keep(r.UpdateReplacePolicy) {
				out = append(out, one(r, "UpdateReplacePolicy", "UpdateReplacePolicy is %q: a replacing update deletes the data", orDefault(r.UpdateReplacePolicy, "Delete"))...)
			}
			return out
		}),
	},
	eventRule("RDS-020", "Security Hub RDS.19", bestpractice.SourceCluster),
	eventRule("RDS-021", "Security Hub RDS.20", bestpractice.SourceInstance),
	eventRule("RDS-022", "Security Hub RDS.21", bestpractice.SourceParameterGroup),
	{
		ID: "RDS-023", Severity: Warning, Title: "Automatic minor version upgrades are on outside prod",
		Rationale: "minor versions carry security fixes; only prod holds them back for a controlled upgrade",
		Fix:       "leave AutoMinorVersionUpgrade unset or true on dev, test and pre-prod instances",
		Source:    "Security Hub RDS.35 (clusters), RDS.13 (instances); README.md#per-stage (the per-stage table)",
		Types:     []string{dbInstance},
		Stages:    stagesWhere(func(s bestpractice.StageSettings) bool { return s.AutoMinorVersionUpgrade }),
		check: forEach([]string{dbInstance}, func(c *Context, r *cft.Resource) []Violation {
			if !c.StageSettings().AutoMinorVersionUpgrade {
				return nil
			}
			v, set := Prop(r, "AutoMinorVersionUpgrade")
			if !set {
				return nil // default true
			}
			b, ok, why := Bool(v)
			if !ok {
				return one(r, "Properties.AutoMinorVersionUpgrade", "AutoMinorVersionUpgrade: %s", why)
			}
			if !b {
				return one(r, "Properties.AutoMinorVersionUpgrade", "automatic minor version upgrades are off")
			}
			return nil
		}),
	},
	{
		ID: "RDS-024", Severity: Warning, Title: "Extended Support is chosen explicitly",
		Rationale: "without EngineLifecycleSupport, a major version leaving standard support moves to paid RDS Extended Support by surprise",
		Fix:       "set EngineLifecycleSupport (open-source-rds-extended-support-disabled unless you mean to pay)",
		Source:    "Aurora User Guide: Using Amazon RDS Extended Support",
		Types:     []string{dbCluster},
		check: forEach(clusterTypes, func(c *Context, r *cft.Resource) []Violation {
			v, set := Prop(r, "EngineLifecycleSupport")
			if !set {
				return one(r, "Properties.EngineLifecycleSupport", "not set: RDS Extended Support (paid) is the default")
			}
			if _, ok, why := Str(v); !ok {
				return one(r, "Properties.EngineLifecycleSupport", "EngineLifecycleSupport: %s", why)
			}
			return nil
		}),
	},
}
