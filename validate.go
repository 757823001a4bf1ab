package apgstack

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/apgstack/apgstack/bestpractice"
)

// FieldError is one configuration value that breaks its constraint.
type FieldError struct {
	Field   string // the YAML path, e.g. database.port
	Value   string
	Allowed string // what is allowed, in words
}

func (e FieldError) Error() string {
	v := e.Value
	if len(v) > 300 { // longer than any limit: a value pasted by mistake is named, not printed whole
		v = fmt.Sprintf("%s… (%d characters)", v[:60], len(e.Value))
	}
	return fmt.Sprintf("%s: %q is not allowed: %s", e.Field, v, e.Allowed)
}

// MaxTagValue is AWS's limit on the length of a tag value.
const MaxTagValue = 256

// ValidationError gathers every FieldError of a configuration so that a user fixes them in one go.
type ValidationError struct {
	Errors []FieldError
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid configuration (%d error", len(e.Errors))
	if len(e.Errors) != 1 {
		b.WriteString("s")
	}
	b.WriteString("):")
	for _, fe := range e.Errors {
		b.WriteString("\n  ")
		b.WriteString(fe.Error())
	}
	return b.String()
}

// The sample's patterns, kept so that a value valid here is valid as a stack parameter.
var (
	StackNamePattern      = regexp.MustCompile(`^[a-zA-Z][-a-zA-Z0-9]*$`)
	IdentifierPattern     = regexp.MustCompile(`^[a-zA-Z][0-9a-zA-Z_]*$`)
	ApplicationPattern    = regexp.MustCompile(`^[a-zA-Z]+[a-zA-Z ]+[a-zA-Z]+$`)
	VersionPattern        = regexp.MustCompile(`^[a-zA-Z0-9.\-]+$`)
	CostCenterPattern     = regexp.MustCompile(`^[a-zA-Z0-9]+$`)
	EmailPattern          = regexp.MustCompile(`^(([^<>()\[\]\\.,;:\s@"]+(\.[^<>()\[\]\\.,;:\s@"]+)*)|(".+"))@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}])|(([a-zA-Z\-0-9]+\.)+[a-zA-Z]{2,}))$`)
	CIDRPattern           = regexp.MustCompile(`^(([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])\.){3}([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])(/([0-9]|[1-2][0-9]|3[0-2]))$`)
	AltInitScriptPattern  = regexp.MustCompile(`^http.*|^$`)
	S3BucketPattern       = regexp.MustCompile(`^$|^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$`)
	AWSRegionPattern      = regexp.MustCompile(`^$|^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$`)
	DBSnapshotNamePattern = regexp.MustCompile(`^$|^[a-zA-Z][a-zA-Z0-9\-:]*$`)
	ImageIDPattern        = regexp.MustCompile(`^$|^ami-[0-9a-f]{8,17}$`)

	bannerPattern         = regexp.MustCompile(`^default$|^s3://[^\s'"\\$` + "`" + `]+$`)
	safeInitScriptPattern = regexp.MustCompile(`^$|^http[^\s'"\\$` + "`" + `]*$`)
)

// MaxSchemaLength keeps the longest role name the schema gives — <schema>_owner_clone, the owner's
// identity under AWS's multi-user rotation, which refuses names over 63 characters — within
// PostgreSQL's 63-byte identifiers.
const MaxSchemaLength = 63 - len("_owner_clone")

// Validate checks every field with the original templates' constraints, and the engine version
// against the release calendar on today's date, and returns a *ValidationError listing all that
// fail, or nil.
func (c *Config) Validate() error { return c.ValidateAt(time.Now()) }

// ValidateAt is Validate on day now (the engine version's support depends on the date).
func (c *Config) ValidateAt(now time.Time) error {
	v := &validator{}
	e := c.Environment
	v.oneOf("environment.stage", e.Stage, Stages)
	v.pattern("environment.application", e.Application, ApplicationPattern, "letters and spaces, starting and ending with a letter, at least 3 characters")
	v.pattern("environment.applicationVersion", e.ApplicationVersion, VersionPattern, "letters, digits, '.' and '-' (e.g. 1.0.0)")
	v.pattern("environment.projectCostCenter", e.ProjectCostCenter, CostCenterPattern, "letters and digits only")
	v.pattern("environment.serviceOwnersEmailContact", e.ServiceOwnersEmailContact, EmailPattern, "a valid e-mail address")
	v.pattern("environment.notificationList", e.NotificationList, EmailPattern, "a valid e-mail address")
	for _, tag := range []struct{ field, value string }{
		{"environment.application", e.Application}, {"environment.applicationVersion", e.ApplicationVersion},
		{"environment.projectCostCenter", e.ProjectCostCenter}, {"environment.serviceOwnersEmailContact", e.ServiceOwnersEmailContact},
	} {
		if len(tag.value) > MaxTagValue {
			v.add(tag.field, tag.value, fmt.Sprintf("%d characters at most (it becomes a tag value on every resource, and AWS allows %d)", MaxTagValue, MaxTagValue))
		}
	}
	v.oneOf("environment.confidentiality", e.Confidentiality, ConfidentialityValues)
	v.oneOf("environment.compliance", e.Compliance, ComplianceValues)

	n := c.Network
	v.stackName("network.stackName", n.StackName)
	v.intRange("network.classB", n.ClassB, 0, 255)
	v.intOneOf("network.flowLogsRetentionInDays", n.FlowLogsRetentionInDays, LogRetentionDays)

	b := c.Bastion
	v.stackName("bastion.stackName", b.StackName)
	if !CIDRPattern.MatchString(b.RemoteAccessCIDR) {
		v.add("bastion.remoteAccessCIDR", b.RemoteAccessCIDR, "an IPv4 CIDR block x.x.x.x/x")
	} else if p, err := netip.ParsePrefix(b.RemoteAccessCIDR); err != nil || p.Masked() != p {
		v.add("bastion.remoteAccessCIDR", b.RemoteAccessCIDR, "an IPv4 CIDR block with no host bits set (x.x.x.x/x)")
	}
	v.pattern("bastion.keyPairName", b.KeyPairName, regexp.MustCompile(`^[\x20-\x7e]{1,255}$`), "the name of an EC2 key pair (1 to 255 printable ASCII characters)")
	v.oneOf("bastion.instanceType", b.InstanceType, BastionInstanceTypes)
	v.intOneOf("bastion.logsRetentionInDays", b.LogsRetentionInDays, LogRetentionDays)
	v.oneOf("bastion.tenancy", b.Tenancy, Tenancies)
	// Both values end up in the bastion's user-data script: no white space or quotes.
	v.pattern("bastion.banner", b.Banner, bannerPattern, `"default" or an S3 location beginning with s3:// (no white space or quotes)`)
	v.pattern("bastion.altInitScript", b.AltInitScript, safeInitScriptPattern, "empty or a URL beginning with http (no white space or quotes)")
	v.pattern("bastion.osImageOverride", b.OSImageOverride, ImageIDPattern, "empty or an AMI id (ami-0123456789abcdef0)")

	d := c.Database
	v.stackName("database.stackName", d.StackName)
	v.identifier("database.name", d.Name, 64)
	v.intRange("database.port", d.Port, 1150, 65535)
	v.identifier("database.username", d.Username, 16)
	if contains(ReservedDBUsernames, strings.ToLower(d.Username)) {
		v.add("database.username", d.Username, "a name RDS does not reserve (not one of "+joinAny(ReservedDBUsernames)+")")
	}
	if p := bestpractice.VersionProblem(d.EngineVersion, d.EngineLifecycleSupport, d.InstanceClassOf(), now); p != "" {
		v.add("database.engineVersion", d.EngineVersion, p)
	}
	v.oneOf("database.instanceClass", d.InstanceClass, InstanceClasses)
	v.pattern("database.snapshotName", d.SnapshotName, DBSnapshotNamePattern, "empty or a DB cluster snapshot identifier or ARN (starts with a letter)")
	v.pattern("database.bootstrapS3Bucket", d.BootstrapS3Bucket, S3BucketPattern, "empty or an S3 bucket name (3 to 63 lower-case letters, digits, '.' and '-')")
	if (d.BootstrapS3Bucket == "") != (d.BootstrapS3Key == "") {
		v.add("database.bootstrapS3Key", d.BootstrapS3Key, "set together with database.bootstrapS3Bucket, or both empty")
	}
	v.oneOf("database.engineLifecycleSupport", d.EngineLifecycleSupport, LifecycleSupports)
	for _, class := range strings.Split(d.PgauditLog, ",") {
		class = strings.TrimPrefix(strings.TrimSpace(class), "-")
		if !contains(PgauditClasses, strings.ToLower(class)) {
			v.add("database.pgauditLog", d.PgauditLog, "a comma-separated list of pgaudit classes ("+joinAny(PgauditClasses)+"), each optionally prefixed with -")
			break
		}
	}
	// The bootstrap's roles are <schema>_owner, _rw and _ro, and their rotation clones
	// <role>_clone: MaxSchemaLength keeps them within PostgreSQL's 63-byte names.
	const cloneLimit = "the owner's rotation identity <schema>_owner_clone must fit in 63 characters (AWS's multi-user rotation refuses longer names)"
	switch {
	case d.Schema != "" && !IdentifierPattern.MatchString(d.Schema):
		v.identifier("database.schema", d.Schema, MaxSchemaLength)
	case len(d.Schema) > MaxSchemaLength:
		v.add("database.schema", d.Schema, fmt.Sprintf("%d characters at most: %s", MaxSchemaLength, cloneLimit))
	case d.Schema == "" && len(d.Name) > MaxSchemaLength:
		v.add("database.schema", d.Schema, fmt.Sprintf("a schema name of %d characters at most: database.name (%d characters) is too long to stand in for it, so name the schema (%s)", MaxSchemaLength, len(d.Name), cloneLimit))
	}
	v.intOneOf("database.logsRetentionInDays", d.LogsRetentionInDays, LogRetentionDays)
	v.validateAurora(c)

	t := c.Target
	v.oneOf("target.kind", t.Kind, TargetKinds)
	v.pattern("target.aws.region", t.AWS.Region, AWSRegionPattern, "empty (the AWS configuration chain decides) or a Region name such as eu-west-1")
	if t.Local.StateDir == "" {
		v.add("target.local.stateDir", t.Local.StateDir, "a directory path")
	}
	if t.Local.ReaderPort != 0 {
		v.intRange("target.local.readerPort", t.Local.ReaderPort, 1150, 65535)
		if t.Local.ReaderPort == d.Port {
			v.add("target.local.readerPort", strconv.Itoa(t.Local.ReaderPort), "a port other than database.port")
		}
	}
	if t.Local.MetricsPort != 0 {
		v.intRange("target.local.metricsPort", t.Local.MetricsPort, 1024, 65535)
	}
	if t.Local.SMTPFrom != "" {
		v.pattern("target.local.smtpFrom", t.Local.SMTPFrom, EmailPattern, "empty (apgstack@localhost) or an e-mail address")
	}
	for _, name := range sortedMapKeys(t.Local.AlarmThresholds) {
		if !contains(AlarmNames, name) {
			v.add("target.local.alarmThresholds."+name, fmt.Sprint(t.Local.AlarmThresholds[name]), "an alarm name ("+joinAny(AlarmNames)+") with a number")
		}
	}
	if t.Local.RotationInterval != "" {
		if dur, err := time.ParseDuration(t.Local.RotationInterval); err != nil || dur < time.Second {
			v.add("target.local.rotationInterval", t.Local.RotationInterval, "empty (30 days) or a Go duration of at least 1s, such as 720h or 30s")
		}
	}
	if len(v.errs) == 0 {
		return nil
	}
	return &ValidationError{Errors: v.errs}
}

type validator struct{ errs []FieldError }

func (v *validator) add(field, value, allowed string) {
	v.errs = append(v.errs, FieldError{Field: field, Value: value, Allowed: allowed})
}

func (v *validator) oneOf(field, value string, allowed []string) {
	if !contains(allowed, value) {
		v.add(field, value, "one of "+joinAny(allowed))
	}
}

func (v *validator) intOneOf(field string, value int, allowed []int) {
	if !contains(allowed, value) {
		v.add(field, strconv.Itoa(value), "one of "+joinAny(allowed))
	}
}

func (v *validator) intRange(field string, value, lo, hi int) {
	if value < lo || value > hi {
		v.add(field, strconv.Itoa(value), fmt.Sprintf("a whole number from %d to %d", lo, hi))
	}
}

func (v *validator) pattern(field, value string, re *regexp.Regexp, allowed string) {
	if !re.MatchString(value) {
		v.add(field, value, allowed)
	}
}

func (v *validator) stackName(field, value string) {
	if len(value) > 128 || !StackNamePattern.MatchString(value) {
		v.add(field, value, "a stack name: a letter, then letters, digits and '-', 128 characters at most")
	}
}

func (v *validator) identifier(field, value string, max int) {
	if len(value) > max || !IdentifierPattern.MatchString(value) {
		v.add(field, value, fmt.Sprintf("a letter, then letters, digits and '_', %d characters at most", max))
	}
}

// SchemaName is the application schema: the configured one, or DBName in lower case.
func (d Database) SchemaName() string {
	if d.Schema != "" {
		return d.Schema
	}
	return strings.ToLower(d.Name)
}

// ReaderPort is the local reader endpoint's port.
func (c *Config) ReaderPort() int {
	if c.Target.Local.ReaderPort != 0 {
		return c.Target.Local.ReaderPort
	}
	return c.Database.Port + 1
}

// Warnings are what validate, explain, up and the twin show before they act, on day now: a
// major near or past its end of standard support, and the choices below that a user should
// know the price of. A configuration that does not validate may warn too.
func (c *Config) Warnings(now time.Time) []string {
	var out []string
	d := c.Database
	if w := bestpractice.VersionWarning(d.EngineVersion, d.EngineLifecycleSupport, d.InstanceClassOf(), now); w != "" {
		out = append(out, "database.engineVersion "+d.EngineVersion+": "+w)
	}
	return out
}
