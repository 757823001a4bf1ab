package stacks

import (
	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/cft"
)

// Rotation of the four secrets, and its order:
//
//  1. The master secret rotates single-user, once the writer is up and — when there is one —
//     once the bootstrap has read the master password. Its schedule has one logical id whatever
//     the bootstrap switch says (turning the bootstrap on or off must not delete the schedule, which
//     would cancel the master's rotation); DependsOn cannot name a resource whose condition is
//     false, so the schedule depends on a gate that is always there and that refers to the
//     bootstrap only through Fn::If.
//  2. A RotationSchedule is complete once Secrets Manager accepted the rotation. The application
//     secrets' multi-user rotation logs in with the master secret, whose single-user rotation sets
//     the new password before it publishes it: their first rotation waits for a custom resource
//     (the bootstrap function) that answers once the master's rotation has finished.
const (
	dbRotationGate     = "AuroraSecretRotationGate"
	dbMasterRotated    = "AuroraSecretRotated"
	dbCustomRotated    = "Custom::SecretRotated"
	rotationLambdaBase = "apg-" // + the stack id's UUID + "-" + role: within Lambda's 64 characters
)

func rotationID(secret string) string {
	if secret == dbMasterSecret {
		return "AuroraSecretRotationSchedule"
	}
	return secret + "RotationSchedule"
}

// rotationLambdaName names a hosted rotation function after the stack's UUID (36 characters), not
// its name (up to 128): "apg-<uuid>-master" is 47 characters at most, within Lambda's 64, and
// unique in the account and Region.
func rotationLambdaName(role string) any {
	return cft.Join("", rotationLambdaBase, cft.Select(2, cft.Split("/", cft.Ref(cft.StackId))), "-"+role)
}

// hostedRotation is the HostedRotationLambda of a rotation schedule: the function AWS Secrets
// Manager provides, running in the private subnets with the Lambda security group.
func hostedRotation(rotationType, role string, extra map[string]any) map[string]any {
	h := map[string]any{
		"RotationType":        rotationType,
		"RotationLambdaName":  rotationLambdaName(role),
		"VpcSubnetIds":        cft.ImportSub("${ParentVPCStack}-SubnetsPrivate"),
		"VpcSecurityGroupIds": importLambdaSG(),
		"KmsKeyArn":           cft.GetAtt(dbKey, "Arn"),
		"ExcludeCharacters":   bestpractice.PasswordExcludeCharacters,
	}
	for k, v := range extra {
		h[k] = v
	}
	return h
}

func addRotation(t *cft.Template) {
	schedule := func(name, secret, condition string, hosted map[string]any, dependsOn ...string) {
		r := t.AddResource(name, "AWS::SecretsManager::RotationSchedule", map[string]any{
			"SecretId":                  cft.Ref(secret),
			"HostedRotationLambda":      hosted,
			"RotationRules":             map[string]any{"AutomaticallyAfterDays": bestpractice.RotationDays},
			"RotateImmediatelyOnUpdate": true,
		})
		r.DependsOn, r.Condition = dependsOn, condition
	}
	gate := t.AddResource(dbRotationGate, "AWS::CloudFormation::WaitConditionHandle", map[string]any{})
	gate.Condition = condNoSnapshot
	gate.Metadata = map[string]any{"apgstack": map[string]any{
		"Purpose":        "orders the master secret's rotation after the bootstrap, when there is one",
		"AfterBootstrap": cft.If(condBootstrap, cft.Ref(dbBootstrap), ""),
	}}
	master := rotationID(dbMasterSecret)
	schedule(master, dbMasterSecret, condNoSnapshot, hostedRotation("PostgreSQLSingleUser", RoleMaster, nil),
		attachmentID(dbMasterSecret), dbWriter, dbRotationGate)

	rotated := t.AddResource(dbMasterRotated, dbCustomRotated, map[string]any{
		"ServiceToken":     cft.GetAtt(dbBootstrapFn, "Arn"),
		"ServiceTimeout":   bootstrapServiceTimeout,
		"RotatedSecretArn": cft.Ref(dbMasterSecret),
		"TolerateFailure":  cft.Ref("TolerateBootstrapFailure"),
	})
	rotated.Condition, rotated.DependsOn = condBootstrap, []string{master}

	roles := map[string]string{OwnerSecretID: RoleOwner, ReadWriteSecretID: RoleReadWrite, ReadOnlySecretID: RoleReadOnly}
	for _, s := range appSecrets() {
		schedule(rotationID(s.Logical), s.Logical, condBootstrap,
			hostedRotation("PostgreSQLMultiUser", roles[s.Logical], map[string]any{
				"MasterSecretArn":       cft.Ref(dbMasterSecret),
				"MasterSecretKmsKeyArn": cft.GetAtt(dbKey, "Arn"),
			}),
			attachmentID(s.Logical), dbBootstrap, dbMasterRotated)
	}
}
