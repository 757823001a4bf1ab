package awsfake

import (
	"fmt"
	"strings"

	"github.com/apgstack/apgstack/cft"
)

// The fake's CloudFormation, operations: resources created, updated and deleted step by step
// (one step per DescribeStacks), nested rotation stacks, rollbacks.

// createResource records a resource of a stack and whatever it stands for (a cluster, a nested
// stack).
func (f *Fake) createResource(s *stack, d resDef) *resource {
	r := &resource{logical: d.logical, typ: d.typ, props: d.props, deletionPolicy: d.deletionPolicy, refs: d.refs}
	suffix := f.suffix()
	switch d.typ {
	case "AWS::RDS::DBCluster":
		r.physical = strings.ToLower(fmt.Sprintf("%s-%s-%s", s.name, d.logical, suffix))
		c := &cluster{id: r.physical, endpoint: r.physical + ".cluster-fake." + f.Region + ".rds.amazonaws.com",
			reader: r.physical + ".cluster-ro-fake." + f.Region + ".rds.amazonaws.com"}
		c.protected = f.resolve(s, s.params, d.raw["DeletionProtection"]) == "true"
		c.version = f.resolve(s, s.params, d.raw["EngineVersion"])
		if e := f.resolve(s, s.params, d.raw["EnableCloudwatchLogsExports"]); e != "" {
			c.logExports = strings.Split(e, ",")
		}
		f.clusters[c.id] = c
	case "AWS::RDS::DBInstance":
		r.physical = strings.ToLower(fmt.Sprintf("%s-%s-%s", s.name, d.logical, suffix))
		// A running instance exports the cluster's logs: RDS makes the log groups it lacks.
		if c := f.clusters[f.resolve(s, s.params, d.raw["DBClusterIdentifier"])]; c != nil {
			for _, e := range c.logExports {
				f.logGroups["/aws/rds/cluster/"+c.id+"/"+e] = true
			}
		}
	case "AWS::Logs::LogGroup":
		r.physical = f.resolve(s, s.params, d.raw["LogGroupName"])
		if r.physical == "" || r.physical == "fake" {
			r.physical = fmt.Sprintf("%s-%s-%s", s.name, d.logical, suffix)
		}
		if f.logGroups[r.physical] {
			f.failures[s.name+"/"+d.logical] = fmt.Sprintf("Resource handler returned message: \"Resource of type 'AWS::Logs::LogGroup' with identifier '%s' already exists.\" (HandlerErrorCode: AlreadyExists)", r.physical)
		}
		f.logGroups[r.physical] = true
	case "AWS::SecretsManager::Secret":
		r.physical = fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-%s-%s", f.Region, f.Account, s.name, d.logical, suffix)
		// What GenerateSecretString makes: the template's username and a generated password.
		f.secrets[r.physical] = `{"username":"pgadmin","password":"fake-generated-password"}`
	case "AWS::CloudFormation::Stack":
		n := f.newStack(fmt.Sprintf("%s-%s-%s", s.name, d.logical, suffix), s.id)
		r.physical = n.id
	default:
		r.physical = fmt.Sprintf("%s-%s-%s", s.name, d.logical, suffix)
	}
	s.resources = append(s.resources, r)
	return r
}

func (f *Fake) removeResource(s *stack, logical string) {
	for i, r := range s.resources {
		if r.logical == logical {
			s.resources = append(s.resources[:i], s.resources[i+1:]...)
			return
		}
	}
}

// The nested stacks' own resources.
var nestedResources = []resDef{{logical: "RotationLambdaRole", typ: "AWS::IAM::Role"}, {logical: "RotationLambda", typ: "AWS::Lambda::Function"}}

func (f *Fake) nestedStart(s *stack, r *resource, verb string) {
	n := f.stacks[r.physical]
	if n == nil {
		return
	}
	f.stackEvent(n, verb+"_IN_PROGRESS", "User Initiated")
	for _, d := range nestedResources {
		if verb == "DELETE" {
			f.event(n, d.logical, d.typ, n.physical(d), "DELETE_IN_PROGRESS", "")
		} else if n.resource(d.logical) == nil {
			f.createResource(n, d)
			f.event(n, d.logical, d.typ, n.physical(d), "CREATE_IN_PROGRESS", "")
		}
	}
}

func (f *Fake) nestedFinish(s *stack, r *resource, verb string) {
	n := f.stacks[r.physical]
	if n == nil {
		return
	}
	for _, d := range nestedResources {
		status := "CREATE_COMPLETE"
		if verb == "DELETE" {
			status = "DELETE_COMPLETE"
		}
		f.event(n, d.logical, d.typ, n.physical(d), status, "")
	}
	f.stackEvent(n, verb+"_COMPLETE", "")
	if verb == "DELETE" {
		n.deleted = true
		n.resources = nil
	}
}

// nestedFailure fails a nested stack's create when a test asked for one of its resources
// (FailResource(parent, "<NestedLogicalID>/<ResourceID>", reason)): the resource fails inside the
// nested stack, which rolls back, and the parent's resource fails with CloudFormation's
// "Embedded stack" message.
func (f *Fake) nestedFailure(s *stack, t task) (string, bool) {
	r := s.resource(t.def.logical)
	n := f.stacks[r.physical]
	if n == nil {
		return "", false
	}
	for _, d := range nestedResources {
		key := s.name + "/" + t.def.logical + "/" + d.logical
		reason, ok := f.failures[key]
		if !ok {
			continue
		}
		delete(f.failures, key)
		f.event(n, d.logical, d.typ, n.physical(d), "CREATE_FAILED", reason)
		f.stackEvent(n, "ROLLBACK_IN_PROGRESS", fmt.Sprintf("The following resource(s) failed to create: [%s]. Rollback requested by user.", d.logical))
		for _, other := range n.resources {
			f.event(n, other.logical, other.typ, other.physical, "DELETE_COMPLETE", "")
		}
		n.resources = nil
		f.stackEvent(n, "ROLLBACK_COMPLETE", "")
		return fmt.Sprintf("Embedded stack %s was not successfully created: The following resource(s) failed to create: [%s]. ", n.id, d.logical), true
	}
	return "", false
}

type task struct {
	action string // Add, Modify, Remove
	def    resDef
}

type operation struct {
	kind    string // CREATE, UPDATE, DELETE
	tasks   []task
	cleanup []task
	// started and finished are tasks by logical id; running are those under way.
	started, finished map[string]bool
	running           []task
	phase             string // run, cleanup, rollback
	// failReason fails a deletion before it deletes anything (an export still imported).
	failReason string
	done       []task // finished tasks, for rollback
	prevBody   string
	prevTpl    *cft.Template
	prevParam  map[string]string
	prevRes    []*resource
}

var verbs = map[string][3]string{ // action -> in progress, complete, failed
	"Add":    {"CREATE_IN_PROGRESS", "CREATE_COMPLETE", "CREATE_FAILED"},
	"Modify": {"UPDATE_IN_PROGRESS", "UPDATE_COMPLETE", "UPDATE_FAILED"},
	"Remove": {"DELETE_IN_PROGRESS", "DELETE_COMPLETE", "DELETE_FAILED"},
}

// advance moves a stack's operation one step.
func (f *Fake) advance(s *stack) {
	op := s.op
	if op == nil {
		return
	}
	switch op.phase {
	case "run":
		if op.kind == "DELETE" {
			f.deleteStep(s)
			return
		}
		// What was under way finishes together: independent resources progress in parallel.
		running := op.running
		op.running = nil
		for i, t := range running {
			reason, fail := f.failures[s.name+"/"+t.def.logical]
			if !fail && t.def.typ == "AWS::CloudFormation::Stack" && t.action == "Add" {
				reason, fail = f.nestedFailure(s, t)
			}
			if !fail {
				f.finishTask(s, t)
				op.done = append(op.done, t)
				op.finished[t.def.logical] = true
				continue
			}
			delete(f.failures, s.name+"/"+t.def.logical)
			f.event(s, t.def.logical, t.def.typ, s.physical(t.def), verbs[t.action][2], reason)
			for _, n := range running[i+1:] {
				cancelled := "Resource creation cancelled"
				if n.action == "Modify" {
					cancelled = "Resource update cancelled"
				}
				f.event(s, n.def.logical, n.def.typ, s.physical(n.def), verbs[n.action][2], cancelled)
				op.done = append(op.done, n)
			}
			op.done = append(op.done, t)
			op.phase = "rollback"
			if op.kind == "CREATE" {
				f.stackEvent(s, "ROLLBACK_IN_PROGRESS", fmt.Sprintf("The following resource(s) failed to create: [%s]. Rollback requested by user.", t.def.logical))
			} else {
				f.stackEvent(s, "UPDATE_ROLLBACK_IN_PROGRESS", fmt.Sprintf("The following resource(s) failed to update: [%s].", t.def.logical))
			}
			return
		}
		// Then every task whose dependencies in this operation are done starts.
		inOp := map[string]bool{}
		for _, t := range op.tasks {
			inOp[t.def.logical] = true
		}
		for _, t := range op.tasks {
			if op.started[t.def.logical] {
				continue
			}
			ready := true
			for _, d := range t.def.deps {
				ready = ready && (!inOp[d] || op.finished[d])
			}
			if ready {
				op.started[t.def.logical] = true
				f.startTask(s, t)
				op.running = append(op.running, t)
			}
		}
		if len(op.running) == 0 {
			if len(op.cleanup) > 0 {
				op.phase = "cleanup"
				f.stackEvent(s, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "")
				return
			}
			f.complete(s)
		}
	case "cleanup":
		t := op.cleanup[0]
		op.cleanup = op.cleanup[1:]
		phys := s.physical(t.def)
		f.event(s, t.def.logical, t.def.typ, phys, "DELETE_IN_PROGRESS", "")
		f.event(s, t.def.logical, t.def.typ, phys, "DELETE_COMPLETE", "")
		f.removeResource(s, t.def.logical)
		if len(op.cleanup) == 0 {
			f.complete(s)
		}
	case "rollback":
		for i := len(op.done) - 1; i >= 0; i-- {
			t := op.done[i]
			phys := s.physical(t.def)
			switch {
			case t.action == "Add" && phys != "":
				f.event(s, t.def.logical, t.def.typ, phys, "DELETE_IN_PROGRESS", "")
				f.event(s, t.def.logical, t.def.typ, phys, "DELETE_COMPLETE", "")
				if c := f.clusters[phys]; c != nil {
					delete(f.clusters, phys)
				}
			case t.action == "Modify":
				f.event(s, t.def.logical, t.def.typ, phys, "UPDATE_IN_PROGRESS", "")
				f.event(s, t.def.logical, t.def.typ, phys, "UPDATE_COMPLETE", "")
			}
		}
		s.op = nil
		if op.kind == "CREATE" {
			s.resources = nil
			s.outputs = nil
			f.stackEvent(s, "ROLLBACK_COMPLETE", "")
			return
		}
		s.body, s.tpl, s.params, s.resources = op.prevBody, op.prevTpl, op.prevParam, op.prevRes
		f.stackEvent(s, "UPDATE_ROLLBACK_COMPLETE", "")
	}
}

func (f *Fake) startTask(s *stack, t task) {
	var r *resource
	if t.action == "Add" {
		r = f.createResource(s, t.def)
	} else {
		r = s.resource(t.def.logical)
	}
	f.event(s, t.def.logical, t.def.typ, r.physical, verbs[t.action][0], "")
	if t.def.typ == "AWS::CloudFormation::Stack" {
		verb := "CREATE"
		if t.action == "Modify" {
			verb = "UPDATE"
		}
		f.nestedStart(s, r, verb)
	}
}

func (f *Fake) finishTask(s *stack, t task) {
	r := s.resource(t.def.logical)
	if t.def.typ == "AWS::CloudFormation::Stack" {
		verb := "CREATE"
		if t.action == "Modify" {
			verb = "UPDATE"
		}
		f.nestedFinish(s, r, verb)
	}
	r.props, r.deletionPolicy, r.refs = t.def.props, t.def.deletionPolicy, t.def.refs
	f.event(s, t.def.logical, t.def.typ, r.physical, verbs[t.action][1], "")
}

func (f *Fake) complete(s *stack) {
	op := s.op
	s.op = nil
	f.setOutputs(s)
	if op.kind == "CREATE" {
		f.stackEvent(s, "CREATE_COMPLETE", "")
	} else {
		f.stackEvent(s, "UPDATE_COMPLETE", "")
	}
}

// deleteStep deletes one resource (last created first), then the stack.
func (f *Fake) deleteStep(s *stack) {
	if s.op.failReason != "" {
		f.stackEvent(s, "DELETE_FAILED", s.op.failReason)
		s.op = nil
		return
	}
	if len(s.resources) == 0 {
		s.op = nil
		f.stackEvent(s, "DELETE_COMPLETE", "")
		s.deleted = true
		if f.byName[s.name] == s.id {
			delete(f.byName, s.name)
		}
		return
	}
	r := s.resources[len(s.resources)-1]
	f.event(s, r.logical, r.typ, r.physical, "DELETE_IN_PROGRESS", "")
	if n := f.deleteFailures[s.name+"/"+r.logical]; n > 0 {
		f.deleteFailures[s.name+"/"+r.logical] = n - 1
		f.event(s, r.logical, r.typ, r.physical, "DELETE_FAILED",
			fmt.Sprintf("resource %s has a dependent object (Service: Ec2, Status Code: 400, Error Code: DependencyViolation)", r.physical))
		s.op = nil
		f.stackEvent(s, "DELETE_FAILED", fmt.Sprintf("The following resource(s) failed to delete: [%s]. ", r.logical))
		return
	}
	if c := f.clusters[r.physical]; c != nil {
		if c.protected {
			reason := "Cannot delete protected Cluster, please disable deletion protection and try again."
			f.event(s, r.logical, r.typ, r.physical, "DELETE_FAILED", reason)
			s.op = nil
			f.stackEvent(s, "DELETE_FAILED", fmt.Sprintf("The following resource(s) failed to delete: [%s]. ", r.logical))
			return
		}
		if r.deletionPolicy == "Snapshot" || r.deletionPolicy == "" { // clusters default to Snapshot
			f.snapshots = append(f.snapshots, &snapshot{id: fmt.Sprintf("%s-snapshot-%s-%s", strings.ToLower(s.name), strings.ToLower(r.logical), strings.ToLower(f.suffix())),
				cluster: c.id, created: f.now()})
		}
		delete(f.clusters, c.id)
	}
	if r.typ == "AWS::CloudFormation::Stack" {
		f.nestedStart(s, r, "DELETE")
		f.nestedFinish(s, r, "DELETE")
	}
	f.event(s, r.logical, r.typ, r.physical, "DELETE_COMPLETE", "")
	s.resources = s.resources[:len(s.resources)-1]
}
