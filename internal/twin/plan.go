package twin

import (
	"fmt"
	"slices"
	"strings"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/bestpractice"
)

// Effect is what applying a changed field does to a running twin, as a CloudFormation change set
// says whether a property change updates in place or replaces.
type Effect int

const (
	// NoEffect: the field is the AWS realization's only (network, bastion, tags, the AWS target).
	NoEffect Effect = iota
	// Restart: applied when the twin restarts with it (instances restart; the endpoints pause).
	Restart
	// AddReader and RemoveReader: the stage's topology changes (and the twin restarts).
	AddReader
	RemoveReader
	// RenameSecret: the secrets move to their new names with the passwords the server accepts.
	RenameSecret
	// Refused: cannot be applied to existing data; the way forward is named.
	Refused
	// Online: a dynamic parameter, reloaded by the running servers.
	Online
	// PendingReboot: a static setting, applied when an instance restarts (apgstack reboot).
	PendingReboot
)

func (e Effect) String() string {
	return [...]string{"no effect on the local twin", "applied by restarting the twin", "adds a reader",
		"removes a reader (asks first)", "moves the secrets to their new names, passwords kept", "refused",
		"applied online (a dynamic parameter: the servers reload it)", "pending-reboot (applied when an instance restarts: apgstack reboot)"}[e]
}

// Step is one changed field and what applying it does.
type Step struct {
	apgstack.Change
	Effect Effect
	Why    string // for a refusal: the way forward; else a note
}

// Plan is what `up` does to an existing twin to make it match the configuration.
type Plan struct {
	Steps []Step
}

// awsOnlyDatabase are database fields the twin has no use for.
var awsOnlyDatabase = []string{"database.instanceClass", "database.bootstrapS3Bucket", "database.bootstrapS3Key",
	"database.tolerateBootstrapFailure", "database.engineLifecycleSupport", "database.logsRetentionInDays"}

// realizedLocally reports whether the twin realizes a field; the others are the AWS path's alone
// (network, bastion, tags, the AWS target).
func realizedLocally(path string) bool {
	if slices.Contains(awsOnlyDatabase, path) {
		return false
	}
	return path == "environment.stage" || path == "environment.notificationList" ||
		strings.HasPrefix(path, "database.") || strings.HasPrefix(path, "target.local.")
}

// PlanUpdate compares the twin's recorded configuration with the new one.
func PlanUpdate(recorded, next apgstack.Config) Plan {
	var p Plan
	for _, c := range apgstack.Diff(recorded, next) {
		p.Steps = append(p.Steps, classify(c, recorded, next))
	}
	return p
}

func classify(c apgstack.Change, old, next apgstack.Config) Step {
	s := Step{Change: c, Effect: Restart}
	switch {
	case !realizedLocally(c.Path), c.Path == "target.local.stateDir", c.Path == "target.local.strictVersion":
		s.Effect = NoEffect
	case c.Path == "environment.stage":
		before, after := bestpractice.Stage(old.Environment.Stage), bestpractice.Stage(next.Environment.Stage)
		switch {
		case after.Reader && !before.Reader:
			s.Effect, s.Why = AddReader, "a reader by base backup and streaming replication"
		case before.Reader && !after.Reader:
			s.Effect, s.Why = RemoveReader, "the writer keeps every acknowledged write; the reader's copy is deleted"
		default:
			s.Why = "replication and the sampler follow the stage"
		}
		if after.SynchronousReplication != before.SynchronousReplication {
			s.Why += fmt.Sprintf("; synchronous replication %s", onOff(after.SynchronousReplication))
		}
		s.Why += "; the secrets move to " + bestpractice.SecretName(next.Environment.Stage, next.Database.StackName) + " with their passwords"
	case c.Path == "database.stackName":
		s.Effect = RenameSecret
		s.Why = "the secrets move to " + bestpractice.SecretName(next.Environment.Stage, next.Database.StackName) +
			" with their passwords; new backups go to the stanza " + next.Database.StackName
	case c.Path == "database.name":
		s.Effect, s.Why = Refused, "the database of existing data keeps its name: restore into a new twin "+
			"(apgstack restore --to-time latest --name NEW, with database.name changed there) or down --delete and up"
	case c.Path == "database.username":
		s.Effect, s.Why = Refused, "the master user of existing data keeps its name: create another role with psql, or down --delete and up"
	case c.Path == "database.schema":
		s.Effect, s.Why = Refused, "the bootstrap ran at creation: apgstack bootstrap --schema "+next.Database.SchemaName()+
			" creates the new schema and its roles on the running twin"
	case c.Path == "database.snapshotName":
		s.Effect, s.Why = Refused, "a snapshot is restored only when a twin is created: down --delete, then up (the final snapshot keeps the data)"
	case c.Path == "database.engineVersion" && apgstack.EngineMajor(c.Old) != apgstack.EngineMajor(c.New):
		s.Effect, s.Why = Refused, "a major version upgrade needs pg_upgrade, which `up` does not run: apgstack upgrade --engine-version "+c.New+" runs it (the twin stops meanwhile)"
	case c.Path == "target.local.osUser":
		s.Effect, s.Why = Refused, "the data directories belong to "+c.Old+": down --delete and up to run under another account"
	case c.Path == "database.pgauditLog":
		s.Effect = Online
	case c.Path == "database.engineVersion":
		s.Effect = PendingReboot
	case c.Path == "database.port" || c.Path == "target.local.readerPort":
		s.Why = "the endpoint moves to the new port"
	}
	return s
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// Empty reports whether the plan changes nothing of the twin.
func (p Plan) Empty() bool {
	for _, s := range p.Steps {
		if s.Effect != NoEffect {
			return false
		}
	}
	return true
}

// Online reports whether a running twin takes the whole plan without a restart: dynamic
// parameters reloaded, static ones left pending-reboot.
func (p Plan) Online() bool {
	for _, s := range p.Steps {
		if s.Effect != NoEffect && s.Effect != Online && s.Effect != PendingReboot {
			return false
		}
	}
	return true
}

// Refusals are the steps that cannot be applied.
func (p Plan) Refusals() []Step { return p.with(Refused) }

// RenamesSecrets reports whether the secrets move to new names.
func (p Plan) RenamesSecrets() bool {
	for _, s := range p.Steps {
		if s.Path == "environment.stage" || s.Path == "database.stackName" {
			return true
		}
	}
	return false
}

func (p Plan) with(e Effect) []Step {
	var out []Step
	for _, s := range p.Steps {
		if s.Effect == e {
			out = append(out, s)
		}
	}
	return out
}

// String is the plan as `up` prints it: each changed field, old -> new, and what it does.
func (p Plan) String() string {
	var b strings.Builder
	for _, s := range p.Steps {
		fmt.Fprintf(&b, "  %-36s %s", s.Change.String(), s.Effect)
		if s.Why != "" {
			fmt.Fprintf(&b, ": %s", s.Why)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
