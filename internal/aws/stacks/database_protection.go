package stacks

import "github.com/apgstack/apgstack/cft"

// keepAppSecretsWithCluster makes the application secrets' deletion protection last as long as
// the cluster, as the master secret's does (masterSecretField): CloudFormation deletes a resource
// only after everything that refers to it, so the cluster refers to the three resource policies.
// DependsOn cannot name resources whose condition may be false; a reference under Fn::If in the
// cluster's Metadata can.
func keepAppSecretsWithCluster(t *cft.Template) {
	var policies []any
	for _, s := range appSecrets() {
		policies = append(policies, cft.Ref(policyID(s.Logical)))
	}
	c := t.Resource(dbCluster)
	if c.Metadata == nil {
		c.Metadata = map[string]any{}
	}
	c.Metadata["apgstack"] = map[string]any{"SecretsProtectedUntilDeleted": cft.If(condBootstrap, policies, cft.NoValue())}
}
