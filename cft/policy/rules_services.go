package policy

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/cft"
	"github.com/apgstack/apgstack/cft/schema"
)

const (
	kmsKey     = "AWS::KMS::Key"
	snsTopic   = "AWS::SNS::Topic"
	secret     = "AWS::SecretsManager::Secret"
	lambdaFn   = "AWS::Lambda::Function"
	logGroup   = "AWS::Logs::LogGroup"
	alarm      = "AWS::CloudWatch::Alarm"
	rotation   = "AWS::SecretsManager::RotationSchedule"
	eventSub   = "AWS::RDS::EventSubscription"
	iamRole    = "AWS::IAM::Role"
	topicPol   = "AWS::SNS::TopicPolicy"
	secretPol  = "AWS::SecretsManager::ResourcePolicy"
	lambdaPerm = "AWS::Lambda::Permission"
)

var kmsRules = []*Rule{
	{
		ID: "KMS-001", Severity: Error, Title: "KMS key rotation is on",
		Rationale: "yearly rotation limits how much data one key version protects, at no cost to availability",
		Fix:       "set EnableKeyRotation: true on symmetric keys",
		Source:    "Security Hub KMS.4",
		Types:     []string{kmsKey},
		check: forEach([]string{kmsKey}, func(c *Context, r *cft.Resource) []Violation {
			if spec, ok := Prop(r, "KeySpec"); ok && spec != "SYMMETRIC_DEFAULT" {
				return nil // rotation applies to symmetric keys only
			}
			return wantTrue(c, r, "EnableKeyRotation", "key rotation")
		}),
	},
	{
		ID: "KMS-002", Severity: Error, Title: "Key policies name their principals",
		Rationale: "a key policy with Principal * lets any AWS account use or manage the key once a condition slips",
		Fix:       "name the account root, roles or service principals instead of *",
		Source:    "Security Hub KMS.5",
		Types:     []string{kmsKey},
		check: forEach([]string{kmsKey}, func(c *Context, r *cft.Resource) []Violation {
			return noWildcardPrincipal(r, "Properties.KeyPolicy", "key policy")
		}),
	},
	{
		ID: "KMS-003", Severity: Error, Title: "Keys that encrypt databases outlive the stack",
		Rationale: "a final snapshot encrypted with a deleted key can never be restored",
		Fix:       "set DeletionPolicy: Retain and UpdateReplacePolicy: Retain on the key",
		Source:    "Security Hub KMS.3; Aurora User Guide: Encrypting Amazon Aurora resources",
		Types:     []string{kmsKey, dbCluster, dbInstance},
		check: func(c *Context) []Violation {
			var out []Violation
			seen := map[string]bool{}
			for _, db := range c.OfType(dbCluster, dbInstance) {
				v, _ := Prop(db, "KmsKeyId")
				k := c.keyResource(v)
				if k == nil || seen[k.Name] {
					continue
				}
				seen[k.Name] = true
				if k.DeletionPolicy != "Retain" && k.DeletionPolicy != "RetainExceptOnCreate" {
					out = append(out, one(k, "DeletionPolicy", "the key encrypts %s but is deleted with the stack", db.Name)...)
				}
				if k.UpdateReplacePolicy != "Retain" {
					out = append(out, one(k, "UpdateReplacePolicy", "the key encrypts %s but a replacing update deletes it", db.Name)...)
				}
			}
			return out
		},
	},
	{
		ID: "KMS-004", Severity: Error, Title: "No IAM policy decrypts with every key",
		Rationale: "kms:Decrypt on Resource * reaches every key the key policies delegate to IAM",
		Fix:       "name the key ARNs (e.g. !GetAtt Key.Arn) in the Resource of kms:Decrypt and kms:ReEncryptFrom",
		Source:    "Security Hub KMS.1, KMS.2",
		Types:     iamTypes,
		check: func(c *Context) []Violation {
			var out []Violation
			for _, s := range c.identityStatements() {
				if !s.allResources() {
					continue
				}
				for _, a := range []string{"kms:Decrypt", "kms:ReEncryptFrom"} {
					if s.grants(a) {
						out = append(out, Violation{s.res.Name, s.path, fmt.Sprintf("%s is allowed on every key (Resource *)", a)})
						break
					}
				}
			}
			return out
		},
	},
}

// publisher is a service that publishes to a topic, through which resource, and how a key
// policy statement names it.
type publisher struct {
	name, via string
	admits    func(principal any) bool
}

func servicePrincipal(svc string) func(any) bool {
	return func(p any) bool {
		for _, s := range servicePrincipals(p) {
			if s == svc {
				return true
			}
		}
		return false
	}
}

// autoScalingRole matches the Auto Scaling service-linked role, which publishes group
// notifications (a service principal cannot stand in for it).
func autoScalingRole(p any) bool {
	m, ok := p.(map[string]any)
	return ok && containsString(m["AWS"], "aws-service-role/autoscaling.amazonaws.com/")
}

// publishers returns the AWS services that publish to a topic, in a stable order.
func (c *Context) publishers(topic string) []publisher {
	var out []publisher
	seen := map[string]bool{}
	add := func(name, via string, admits func(any) bool) {
		if !seen[name] {
			seen[name] = true
			out = append(out, publisher{name, via, admits})
		}
	}
	for _, a := range c.OfType(alarm) {
		for _, p := range []string{"AlarmActions", "OKActions", "InsufficientDataActions"} {
			if v, ok := Prop(a, p); ok && Mentions(v, topic) {
				add("cloudwatch.amazonaws.com", a.Name, servicePrincipal("cloudwatch.amazonaws.com"))
			}
		}
	}
	for _, e := range c.OfType(eventSub) {
		if v, ok := Prop(e, "SnsTopicArn"); ok && Mentions(v, topic) {
			add("events.rds.amazonaws.com", e.Name, servicePrincipal("events.rds.amazonaws.com"))
		}
	}
	for _, g := range c.OfType(autoScalingGroup) {
		if v, ok := Prop(g, "NotificationConfigurations"); ok && Mentions(v, topic) {
			add("the Auto Scaling service-linked role", g.Name, autoScalingRole)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func publisherNames(ps []publisher) string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.name
	}
	return strings.Join(names, " and ")
}

var snsRules = []*Rule{
	{
		ID: "SNS-001", Severity: Error, Title: "SNS topics are encrypted",
		Rationale: "alarm and event messages name hosts, databases and failures; they should be encrypted at rest",
		Fix:       "set KmsMasterKeyId to a customer-managed key whose policy lets the publishers use it",
		Source:    "Security Hub SNS.1",
		Types:     []string{snsTopic},
		check: forEach([]string{snsTopic}, func(c *Context, r *cft.Resource) []Violation {
			if _, ok := Prop(r, "KmsMasterKeyId"); !ok {
				return one(r, "Properties.KmsMasterKeyId", "the topic is not encrypted")
			}
			return nil
		}),
	},
	{
		ID: "SNS-002", Severity: Error, Title: "The services that publish to an encrypted topic can use its key",
		Rationale: "CloudWatch alarms and RDS events cannot publish to a topic whose key they may not use: the notifications are silently lost",
		Fix:       "encrypt the topic with a customer-managed key whose policy allows kms:GenerateDataKey* and kms:Decrypt to cloudwatch.amazonaws.com, events.rds.amazonaws.com and, for group notifications, the Auto Scaling service-linked role",
		Source:    "SNS Developer Guide: Enable compatibility between event sources from AWS services and encrypted topics",
		Types:     []string{snsTopic, kmsKey, alarm, eventSub, autoScalingGroup},
		check: forEach([]string{snsTopic}, func(c *Context, r *cft.Resource) []Violation {
			keyRef, ok := Prop(r, "KmsMasterKeyId")
			if !ok {
				return nil // SNS-001
			}
			pubs := c.publishers(r.Name)
			if len(pubs) == 0 {
				return nil
			}
			if s, _ := keyRef.(string); strings.Contains(s, "alias/aws/") {
				return one(r, "Properties.KmsMasterKeyId", "the AWS managed key %s cannot grant %s, so they cannot publish", s, publisherNames(pubs))
			}
			key := c.keyResource(keyRef)
			if key == nil {
				return one(r, "Properties.KmsMasterKeyId", "the topic's key is not declared in this template, so its policy cannot be shown to admit %s", publisherNames(pubs))
			}
			doc, _ := Prop(key, "KeyPolicy")
			var out []Violation
			for _, pub := range pubs {
				gen, dec := false, false
				for _, s := range statements(doc, "Properties.KeyPolicy") {
					if pub.admits(s.principal) {
						gen = gen || s.grants("kms:GenerateDataKey")
						dec = dec || s.grants("kms:Decrypt")
					}
				}
				if !gen || !dec {
					out = append(out, one(key, "Properties.KeyPolicy", "%s publishes to %s (through %s) but the key policy does not allow it kms:GenerateDataKey* and kms:Decrypt", pub.name, r.Name, pub.via)...)
				}
			}
			return out
		}),
	},
	{
		ID: "SNS-003", Severity: Error, Title: "Topic policies name their principals",
		Rationale: "a topic policy with Principal * lets anyone publish false alarms or subscribe to real ones",
		Fix:       "name the service principals or accounts that publish instead of *",
		Source:    "Security Hub SNS.4",
		Types:     []string{topicPol},
		check: forEach([]string{topicPol}, func(c *Context, r *cft.Resource) []Violation {
			return noWildcardPrincipal(r, "Properties.PolicyDocument", "topic policy")
		}),
	},
}

var rateDays = regexp.MustCompile(`^rate\((\d+) (day|days|hour|hours)\)$`)

var secretsRules = []*Rule{
	{
		ID: "SM-001", Severity: Error, Title: "Secrets rotate automatically",
		Rationale: "a password that never changes stays valid for everyone who ever saw it",
		Fix:       "add an AWS::SecretsManager::RotationSchedule for the secret (the hosted rotation function of the AWS::SecretsManager-2024-09-16 transform for RDS)",
		Source:    "Security Hub SecretsManager.1",
		Types:     []string{secret, rotation},
		check: forEach([]string{secret}, func(c *Context, r *cft.Resource) []Violation {
			for _, rs := range c.OfType(rotation) {
				if id, _ := Prop(rs, "SecretId"); Mentions(id, r.Name) {
					return nil
				}
			}
			return one(r, "", "no rotation schedule rotates this secret")
		}),
	},
	{
		ID: "SM-002", Severity: Error, Title: fmt.Sprintf("Secrets rotate at least every %d days", bestpractice.RotationDays),
		Rationale: "the rotation period bounds how long a leaked password stays usable",
		Fix:       fmt.Sprintf("set RotationRules.AutomaticallyAfterDays (or ScheduleExpression rate(N days)) to %d or less", bestpractice.RotationDays),
		Source:    "Security Hub SecretsManager.4; bestpractice.RotationDays",
		Types:     []string{rotation},
		check: forEach([]string{rotation}, func(c *Context, r *cft.Resource) []Violation {
			want := bestpractice.RotationDays
			if v, ok := Prop(r, "RotationRules.AutomaticallyAfterDays"); ok {
				n, lit, why := Int(v)
				if !lit {
					return one(r, "Properties.RotationRules.AutomaticallyAfterDays", "AutomaticallyAfterDays: %s", why)
				}
				if n > want {
					return one(r, "Properties.RotationRules.AutomaticallyAfterDays", "rotation every %d days exceeds %d", n, want)
				}
				return nil
			}
			v, ok := Prop(r, "RotationRules.ScheduleExpression")
			if !ok {
				return one(r, "Properties.RotationRules", "no rotation period is set")
			}
			s, lit, why := Str(v)
			if !lit {
				return one(r, "Properties.RotationRules.ScheduleExpression", "ScheduleExpression: %s", why)
			}
			if m := rateDays.FindStringSubmatch(strings.TrimSpace(s)); m != nil {
				n, _ := strconv.Atoi(m[1])
				if strings.HasPrefix(m[2], "hour") || n <= want {
					return nil
				}
				return one(r, "Properties.RotationRules.ScheduleExpression", "rotation every %d days exceeds %d", n, want)
			}
			if f := strings.Fields(strings.TrimSuffix(strings.TrimPrefix(s, "cron("), ")")); strings.HasPrefix(s, "cron(") && len(f) == 6 && (f[2] == "*" || f[2] == "?") {
				return nil // runs at least weekly
			}
			return one(r, "Properties.RotationRules.ScheduleExpression", "%q cannot be shown to rotate every %d days or more often", s, want)
		}),
	},
	{
		ID: "SM-003", Severity: Warning, Title: "Secrets are encrypted with a customer-managed key",
		Rationale: "a customer-managed key lets the key policy, not only IAM, decide who can read the secret, and logs each use",
		Fix:       "set KmsKeyId to the stack's customer-managed key",
		Source:    "Secrets Manager User Guide: Secret encryption and decryption",
		Types:     []string{secret},
		check: forEach([]string{secret}, func(c *Context, r *cft.Resource) []Violation {
			v, _ := Prop(r, "KmsKeyId")
			if ok, why := c.customerKey(v); !ok {
				return one(r, "Properties.KmsKeyId", "secret key: %s", why)
			}
			return nil
		}),
	},
	{
		ID: "SM-004", Severity: Error, Title: "Secret resource policies name their principals",
		Rationale: "a secret policy with Principal * can hand the password to any AWS account",
		Fix:       "name the roles that read the secret instead of *, and keep BlockPublicPolicy on",
		Source:    "Secrets Manager User Guide: Resource-based policies (BlockPublicPolicy)",
		Types:     []string{secretPol},
		check: forEach([]string{secretPol}, func(c *Context, r *cft.Resource) []Violation {
			out := noWildcardPrincipal(r, "Properties.ResourcePolicy", "secret policy")
			if v, ok := Prop(r, "BlockPublicPolicy"); ok {
				if b, lit, _ := Bool(v); lit && !b {
					out = append(out, one(r, "Properties.BlockPublicPolicy", "BlockPublicPolicy is off")...)
				}
			}
			return out
		}),
	},
	{
		ID: "SM-005", Severity: Error, Title: "Secret values are generated, not written in the template",
		Rationale: "a secret value in the template is in every copy of the file and in the stack's history",
		Fix:       "use GenerateSecretString (with SecretStringTemplate for the non-secret fields)",
		Source:    "CloudFormation User Guide: Do not embed credentials in your templates",
		Types:     []string{secret},
		check: forEach([]string{secret}, func(c *Context, r *cft.Resource) []Violation {
			if v, ok := Prop(r, "SecretString"); ok && !dynamicRef(v) {
				return one(r, "Properties.SecretString", "the secret's value is written in the template")
			}
			return nil
		}),
	},
}

// SupportedRuntimes are the Lambda runtimes not deprecated by late 2026 (Lambda Developer Guide,
// "Lambda runtimes"): the Amazon Linux 2 based ones (provided.al2, java8.al2, java11) retire with
// it on 2026-06-30, Node.js 20 on 2026-04-30, Python 3.10 and .NET 8 with their upstream end of
// life in 2026. Update the list when AWS announces more.
var SupportedRuntimes = []string{
	"provided.al2023",
	"nodejs24.x", "nodejs22.x",
	"python3.14", "python3.13", "python3.12", "python3.11",
	"java21", "java17",
	"dotnet10",
	"ruby3.4", "ruby3.3",
}

// asyncInvokers returns, for a function, the resources that invoke it asynchronously.
func (c *Context) asyncInvokers(fn string) []string {
	var out []string
	for _, r := range c.Resources {
		switch {
		case r.Type == "AWS::CloudFormation::CustomResource" || strings.HasPrefix(r.Type, "Custom::"):
			if v, _ := Prop(r, "ServiceToken"); Mentions(v, fn) {
				out = append(out, r.Name)
			}
		case r.Type == "AWS::SNS::Subscription":
			if p, _ := Prop(r, "Protocol"); p == "lambda" {
				if v, _ := Prop(r, "Endpoint"); Mentions(v, fn) {
					out = append(out, r.Name)
				}
			}
		case r.Type == "AWS::Events::Rule":
			if v, _ := Prop(r, "Targets"); Mentions(v, fn) {
				out = append(out, r.Name)
			}
		}
	}
	return out
}

var lambdaRules = []*Rule{
	{
		ID: "LAMBDA-001", Severity: Error, Title: "Functions run on a supported runtime",
		Rationale: "a deprecated runtime gets no security patches and soon cannot be updated",
		Fix:       "move to a supported runtime (provided.al2023 for Go)",
		Source:    "Security Hub Lambda.2",
		Types:     []string{lambdaFn},
		check: forEach([]string{lambdaFn}, func(c *Context, r *cft.Resource) []Violation {
			if pt, _ := Prop(r, "PackageType"); pt == "Image" {
				return nil
			}
			v, _ := Prop(r, "Runtime")
			s, ok, why := Str(v)
			if !ok {
				return one(r, "Properties.Runtime", "Runtime: %s", why)
			}
			for _, rt := range SupportedRuntimes {
				if s == rt {
					return nil
				}
			}
			return one(r, "Properties.Runtime", "runtime %q is deprecated or unknown", s)
		}),
	},
	{
		ID: "LAMBDA-002", Severity: Warning, Title: "Functions run in the VPC",
		Rationale: "a function that reaches the database or secrets should do so over private subnets and security groups, not the internet",
		Fix:       "set VpcConfig with the private subnets and the in-VPC Lambda security group",
		Source:    "Security Hub Lambda.3",
		Types:     []string{lambdaFn},
		check: forEach([]string{lambdaFn}, func(c *Context, r *cft.Resource) []Violation {
			_, sub := Prop(r, "VpcConfig.SubnetIds")
			_, sg := Prop(r, "VpcConfig.SecurityGroupIds")
			if !sub || !sg {
				return one(r, "Properties.VpcConfig", "the function is not attached to a VPC")
			}
			return nil
		}),
	},
	{
		ID: "LAMBDA-003", Severity: Warning, Title: "Asynchronously invoked functions have a failure path",
		Rationale: "an asynchronous invocation that fails after its retries is dropped without trace unless a dead-letter queue or on-failure destination keeps it",
		Fix:       "set DeadLetterConfig.TargetArn or add an AWS::Lambda::EventInvokeConfig with DestinationConfig.OnFailure",
		Source:    "Lambda Developer Guide: Retaining records of asynchronous invocations (dead-letter queues, destinations)",
		Types:     []string{lambdaFn, "AWS::Lambda::EventInvokeConfig"},
		check: forEach([]string{lambdaFn}, func(c *Context, r *cft.Resource) []Violation {
			inv := c.asyncInvokers(r.Name)
			if len(inv) == 0 {
				return nil
			}
			if _, ok := Prop(r, "DeadLetterConfig.TargetArn"); ok {
				return nil
			}
			for _, e := range c.OfType("AWS::Lambda::EventInvokeConfig") {
				if fn, _ := Prop(e, "FunctionName"); Mentions(fn, r.Name) {
					if _, ok := Prop(e, "DestinationConfig.OnFailure.Destination"); ok {
						return nil
					}
				}
			}
			return one(r, "Properties.DeadLetterConfig", "invoked asynchronously by %s but has no dead-letter queue or on-failure destination", strings.Join(inv, ", "))
		}),
	},
	{
		ID: "LAMBDA-004", Severity: Error, Title: "Function permissions are not public",
		Rationale: "a permission for * (or for a service without a source account or ARN) lets anyone, or anyone's resources, invoke the function",
		Fix:       "name the principal and, for a service principal, set SourceArn or SourceAccount",
		Source:    "Security Hub Lambda.1",
		Types:     []string{lambdaPerm},
		check: forEach([]string{lambdaPerm}, func(c *Context, r *cft.Resource) []Violation {
			p, _ := Prop(r, "Principal")
			s, _ := p.(string)
			if s == "*" {
				return one(r, "Properties.Principal", "the function may be invoked by anyone")
			}
			if strings.HasSuffix(s, ".amazonaws.com") {
				_, arn := Prop(r, "SourceArn")
				_, acct := Prop(r, "SourceAccount")
				if !arn && !acct {
					return one(r, "Properties.SourceArn", "%s may invoke the function on behalf of any account: set SourceArn or SourceAccount", s)
				}
			}
			return nil
		}),
	},
	{
		ID: "LAMBDA-005", Severity: Warning, Title: "VPC functions span at least two subnets",
		Rationale: "a function in one subnet stops when that Availability Zone does",
		Fix:       "give VpcConfig.SubnetIds subnets in two or more Availability Zones",
		Source:    "Security Hub Lambda.5",
		Types:     []string{lambdaFn},
		check: forEach([]string{lambdaFn}, func(c *Context, r *cft.Resource) []Violation {
			v, ok := Prop(r, "VpcConfig.SubnetIds")
			if !ok {
				return nil
			}
			// A list from another stack (Split of an import) has a length the template cannot show;
			// only a literal list is judged.
			if l, isList := v.([]any); isList && len(l) < 2 {
				return one(r, "Properties.VpcConfig.SubnetIds", "the function runs in %d subnet(s)", len(l))
			}
			return nil
		}),
	},
}

// broadManagedPolicies are AWS managed policies wider than any job in these stacks.
var broadManagedPolicies = regexp.MustCompile(`(?i)policy/(.*FullAccess.*|AdministratorAccess|PowerUserAccess|ReadOnlyAccess|SecretsManagerReadWrite|AWSKeyManagementServicePowerUser|IAMFullAccess|AmazonSSMAutomationRole|AWSCloudFormationFullAccess)$`)

var iamRules = []*Rule{
	{
		ID: "IAM-001", Severity: Error, Title: "No policy allows every action on every resource",
		Rationale: `"Action": "*" on "Resource": "*" is administrator access for whoever assumes the role`,
		Fix:       "list the actions the job needs and the resources it touches",
		Source:    "Security Hub IAM.1",
		Types:     iamTypes,
		check: func(c *Context) []Violation {
			var out []Violation
			for _, s := range c.identityStatements() {
				if !s.allow || !s.allResources() {
					continue
				}
				for _, a := range s.actions {
					if a == "*" && !s.notAction || s.notAction {
						out = append(out, Violation{s.res.Name, s.path, "allows every action on every resource"})
						break
					}
				}
			}
			return out
		},
	},
	{
		ID: "IAM-002", Severity: Error, Title: "Policies name their actions",
		Rationale: "a service-wide wildcard (s3:*, kms:*) grants actions nobody reviewed, including ones added later",
		Fix:       "replace service:* (and NotAction) with the actions the job calls",
		Source:    "Security Hub IAM.21",
		Types:     iamTypes,
		check: func(c *Context) []Violation {
			var out []Violation
			for _, s := range c.identityStatements() {
				if !s.allow {
					continue
				}
				if s.notAction {
					out = append(out, Violation{s.res.Name, s.path + ".NotAction", "Allow with NotAction grants every other action"})
					continue
				}
				for _, a := range s.actions {
					if a != "*" && strings.HasSuffix(a, ":*") {
						out = append(out, Violation{s.res.Name, s.path + ".Action", fmt.Sprintf("%s grants every action of the service", a)})
					}
				}
			}
			return out
		},
	},
	{
		ID: "IAM-003", Severity: Error, Title: "No AWS managed policy wider than the job",
		Rationale: "FullAccess, PowerUser and administrator policies grant far more than a database, bastion or Lambda role needs",
		Fix:       "attach a narrow managed policy (AmazonSSMManagedInstanceCore, AWSLambdaVPCAccessExecutionRole, AmazonRDSEnhancedMonitoringRole) or an inline policy naming actions and resources",
		Source:    "IAM User Guide: Security best practices (apply least-privilege permissions); Security Hub IAM.1",
		Types:     []string{iamRole, "AWS::IAM::User", "AWS::IAM::Group"},
		check: forEach([]string{iamRole, "AWS::IAM::User", "AWS::IAM::Group"}, func(c *Context, r *cft.Resource) []Violation {
			arns, _ := Prop(r, "ManagedPolicyArns")
			var out []Violation
			for i, a := range List(arns) {
				s := fmt.Sprint(a)
				if fn, arg, ok := cft.Intrinsic(a); ok && fn == "Fn::Sub" {
					s = fmt.Sprint(arg)
				}
				if broadManagedPolicies.MatchString(s) {
					name := s[strings.LastIndex(s, "/")+1:]
					out = append(out, one(r, fmt.Sprintf("Properties.ManagedPolicyArns[%d]", i), "the AWS managed policy %s is wider than the job", name)...)
				}
			}
			return out
		}),
	},
	{
		ID: "IAM-004", Severity: Error, Title: "Role trust policies name who may assume the role",
		Rationale: "a trust policy with Principal * lets any AWS account assume the role",
		Fix:       "name the service principal or account that assumes the role",
		Source:    "IAM User Guide: Security best practices (verify public and cross-account access)",
		Types:     []string{iamRole},
		check: forEach([]string{iamRole}, func(c *Context, r *cft.Resource) []Violation {
			return noWildcardPrincipal(r, "Properties.AssumeRolePolicyDocument", "trust policy")
		}),
	},
	{
		ID: "IAM-005", Severity: Error, Title: "iam:PassRole names the roles",
		Rationale: "iam:PassRole on * lets the holder hand any role, including administrator roles, to a service it controls",
		Fix:       "set the Resource of iam:PassRole to the ARNs of the roles passed",
		Source:    "IAM User Guide: Granting a user permissions to pass a role to an AWS service",
		Types:     iamTypes,
		check: func(c *Context) []Violation {
			var out []Violation
			for _, s := range c.identityStatements() {
				if s.allResources() && s.grants("iam:PassRole") {
					out = append(out, Violation{s.res.Name, s.path, "iam:PassRole is allowed on every role"})
				}
			}
			return out
		},
	},
	{
		ID: "IAM-006", Severity: Warning, Title: "Users get permissions from groups or roles, not their own policies",
		Rationale: "policies attached to users are hard to review and outlive the people",
		Fix:       "attach the policy to a group or role instead",
		Source:    "Security Hub IAM.2",
		Types:     []string{"AWS::IAM::User"},
		check: forEach([]string{"AWS::IAM::User"}, func(c *Context, r *cft.Resource) []Violation {
			_, p := Prop(r, "Policies")
			_, m := Prop(r, "ManagedPolicyArns")
			if p || m {
				return one(r, "Properties", "policies are attached to the user")
			}
			return nil
		}),
	},
}

// sensitiveLogGroup reports why a log group holds database or shell logs ("" if it does not):
// its name is an RDS log group's, or an instance's launch data names it (by reference, or by
// name in user data or cfn-init files).
func (c *Context) sensitiveLogGroup(r *cft.Resource) string {
	var names []string
	if v, ok := Prop(r, "LogGroupName"); ok {
		if s, isStr := v.(string); isStr {
			names = append(names, s)
		}
	}
	if orig := c.Template.Resource(r.Name); orig != nil {
		if fn, arg, ok := cft.Intrinsic(orig.Properties["LogGroupName"]); ok && fn == "Fn::Sub" {
			switch a := arg.(type) {
			case string:
				names = append(names, a)
			case []any:
				if s, isStr := a[0].(string); isStr && len(a) == 2 {
					names = append(names, s)
				}
			}
		}
	}
	for _, n := range names {
		if strings.Contains(n, "/aws/rds/") {
			return "it receives database logs"
		}
	}
	for _, h := range c.OfType(launchTemplate, launchConfiguration, "AWS::EC2::Instance", autoScalingGroup) {
		if Mentions(h.Properties, r.Name) || Mentions(h.Metadata, r.Name) {
			return "it receives shell and SSH logs from " + h.Name
		}
		for _, n := range names {
			if n != "" && (containsString(h.Properties, n) || containsString(h.Metadata, n)) {
				return "it receives shell and SSH logs from " + h.Name
			}
		}
	}
	return ""
}

// containsString reports whether any string inside v contains s.
func containsString(v any, s string) bool {
	switch x := v.(type) {
	case string:
		return strings.Contains(x, s)
	case map[string]any:
		for _, e := range x {
			if containsString(e, s) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if containsString(e, s) {
				return true
			}
		}
	}
	return false
}

var logsRules = []*Rule{
	{
		ID: "LOGS-001", Severity: Error, Title: "Log groups have a retention",
		Rationale: "a log group without retention keeps (and bills) everything forever, and nobody decided how long logs are kept",
		Fix:       "set RetentionInDays (a parameter such as LogsRetentionInDays)",
		Source:    "Security Hub CloudWatch.16",
		Types:     []string{logGroup},
		check: forEach([]string{logGroup}, func(c *Context, r *cft.Resource) []Violation {
			v, set := Prop(r, "RetentionInDays")
			if !set {
				return one(r, "Properties.RetentionInDays", "no retention: logs are kept forever")
			}
			if _, ok, why := Int(v); !ok {
				return one(r, "Properties.RetentionInDays", "RetentionInDays: %s", why)
			}
			return nil
		}),
	},
	{
		ID: "LOGS-002", Severity: Error, Title: "Database and shell logs are encrypted with a customer-managed key",
		Rationale: "database and shell logs hold statements, user names and commands; the key policy should decide who reads them",
		Fix:       "set KmsKeyId to a customer-managed key whose policy allows logs.<region>.amazonaws.com",
		Source:    "CloudWatch Logs User Guide: Encrypt log data in CloudWatch Logs using AWS KMS",
		Types:     []string{logGroup},
		check: forEach([]string{logGroup}, func(c *Context, r *cft.Resource) []Violation {
			why := c.sensitiveLogGroup(r)
			if why == "" {
				return nil
			}
			v, _ := Prop(r, "KmsKeyId")
			if ok, keyWhy := c.customerKey(v); !ok {
				return one(r, "Properties.KmsKeyId", "%s, but %s", why, keyWhy)
			}
			return nil
		}),
	},
	{
		ID: "CW-001", Severity: Error, Title: "Alarms notify someone",
		Rationale: "an alarm without an action changes colour in a console nobody watches",
		Fix:       "set AlarmActions to the notification topic",
		Source:    "Security Hub CloudWatch.15",
		Types:     []string{alarm},
		check: forEach([]string{alarm}, func(c *Context, r *cft.Resource) []Violation {
			v, _ := Prop(r, "AlarmActions")
			if len(List(v)) == 0 {
				return one(r, "Properties.AlarmActions", "the alarm has no action")
			}
			return nil
		}),
	},
	{
		ID: "CW-002", Severity: Error, Title: "Alarm actions are enabled",
		Rationale: "an alarm with ActionsEnabled: false never notifies",
		Fix:       "remove ActionsEnabled or set it to true",
		Source:    "Security Hub CloudWatch.17",
		Types:     []string{alarm},
		check: forEach([]string{alarm}, func(c *Context, r *cft.Resource) []Violation {
			v, set := Prop(r, "ActionsEnabled")
			if !set {
				return nil
			}
			b, ok, why := Bool(v)
			if !ok {
				return one(r, "Properties.ActionsEnabled", "ActionsEnabled: %s", why)
			}
			if !b {
				return one(r, "Properties.ActionsEnabled", "the alarm's actions are disabled")
			}
			return nil
		}),
	},
}

// declaresTagParameters reports whether a template takes any of the mandatory tag parameters.
func declaresTagParameters(t *cft.Template) bool {
	for _, k := range bestpractice.MandatoryTags {
		if t.Parameter(k) != nil {
			return true
		}
	}
	return false
}

var tagRules = []*Rule{{
	ID: "TAG-001", Severity: Error, Title: "Taggable resources carry the mandatory tags",
	Rationale: "owner, cost centre, stage, confidentiality and compliance tags are how costs are charged, owners reached and data governed",
	Fix:       "add " + strings.Join(bestpractice.MandatoryTags, ", ") + " to Tags (from the stack parameters of the same names)",
	Source:    "AWS Tagging Best Practices; Security Hub RDS.28 and the other *.tagged controls",
	Types:     []string{"every type whose schema has Tags"},
	Stages:    "",
	check: func(c *Context) []Violation {
		if !declaresTagParameters(c.Template) {
			return nil // TAG-002
		}
		var out []Violation
		for _, r := range c.Resources {
			s, err := schema.Lookup(r.Type)
			if err != nil {
				continue // custom or unknown types: nothing to say
			}
			taggable, prop := s.Taggable()
			if !taggable {
				continue
			}
			v, _ := Prop(r, prop)
			have := tagKeys(v)
			var missing []string
			for _, k := range bestpractice.MandatoryTags {
				if !have[k] {
					missing = append(missing, k)
				}
			}
			if len(missing) > 0 {
				out = append(out, one(r, "Properties."+prop, "missing tags: %s", strings.Join(missing, ", "))...)
			}
		}
		return out
	},
}, {
	ID: "TAG-002", Severity: Warning, Title: "Templates without tag parameters are deployed with stack tags",
	Rationale: "a template that takes none of the mandatory tag parameters leaves its resources untagged unless the stack itself is tagged, which CloudFormation then propagates",
	Fix:       "create the stack with --tags for " + strings.Join(bestpractice.MandatoryTags, ", ") + " (apgstack up does), or add the tag parameters and tag each resource",
	Source:    "CloudFormation User Guide: Resource tags (stack-level tags propagate); AWS Tagging Best Practices",
	Types:     []string{"every type whose schema has Tags"},
	check: func(c *Context) []Violation {
		if declaresTagParameters(c.Template) {
			return nil
		}
		var untagged []string
		var first *cft.Resource
		for _, r := range c.Resources {
			s, err := schema.Lookup(r.Type)
			if err != nil {
				continue
			}
			if taggable, prop := s.Taggable(); taggable {
				v, _ := Prop(r, prop)
				have := tagKeys(v)
				for _, k := range bestpractice.MandatoryTags {
					if !have[k] {
						untagged = append(untagged, r.Name)
						if first == nil {
							first = r
						}
						break
					}
				}
			}
		}
		if first == nil {
			return nil
		}
		return one(first, "", "the template takes no mandatory tag parameters; %d taggable resource(s) rely on stack-level tags", len(untagged))
	},
}}

// tagKeys reads tag keys with a value from a Tags list ({Key, Value}) or map.
func tagKeys(v any) map[string]bool {
	out := map[string]bool{}
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			m, _ := e.(map[string]any)
			k, _ := m["Key"].(string)
			if val, ok := m["Value"]; ok && val != nil && val != "" && k != "" {
				out[k] = true
			}
		}
	case map[string]any:
		for k, val := range x {
			if val != nil && val != "" {
				out[k] = true
			}
		}
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
