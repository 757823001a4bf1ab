package awsfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apgstack/apgstack/cft"
)

// The fake's CloudFormation: stacks, change sets, operations stepped by DescribeStacks, events.

type stack struct {
	id, name       string
	parent         string // nested: the parent stack's ID
	status, reason string
	body           string
	tpl            *cft.Template
	params         map[string]string
	capabilities   []string
	resources      []*resource
	outputs        []output
	events         []event
	created        time.Time
	updated        time.Time
	op             *operation
	deleted        bool
}

type resource struct {
	logical, typ, physical string
	props                  string // JSON of the properties, to compare
	deletionPolicy         string
	refs                   []string // parameter names the resource's properties mention
}

type output struct{ key, value, export, description string }

type event struct {
	id, logical, typ, physical, status, reason string
	at                                         time.Time
}

type changeSet struct {
	arn, name, stackID         string
	typ                        string // CREATE or UPDATE
	status, execStatus, reason string
	body                       string
	tpl                        *cft.Template
	params                     map[string]string
	capabilities               []string
	changes                    []change
	created                    time.Time
}

type change struct{ action, logical, typ, physical, replacement string }

// resDef is a resource as a template declares it (after the transforms the fake knows).
type resDef struct {
	logical, typ, props, deletionPolicy string
	raw                                 map[string]any
	refs                                []string
}

func parseTemplate(body string) (*cft.Template, error) {
	t, err := cft.Parse([]byte(body))
	if err != nil {
		return nil, err
	}
	return t, nil
}

var subVarRE = regexp.MustCompile(`\$\{([^}!][^}]*)\}`)

// expand lists a template's resources; the Secrets Manager transform's hosted rotation becomes
// the nested stack that CloudFormation creates for it.
func expand(t *cft.Template, params map[string]string) []resDef {
	var out []resDef
	transform := false
	for _, tr := range t.Transform {
		if strings.HasPrefix(tr, "AWS::SecretsManager") {
			transform = true
		}
	}
	paramNames := map[string]bool{}
	for _, p := range t.Parameters {
		paramNames[p.Name] = true
	}
	// Conditions decide which resources exist, as CloudFormation decides them.
	resources := t.Resources
	if ev, err := t.Evaluate(params); err == nil {
		resources = ev.Active()
	}
	for _, r := range resources {
		b, _ := json.Marshal(r.Properties)
		d := resDef{logical: r.Name, typ: r.Type, props: string(b), deletionPolicy: r.DeletionPolicy, raw: r.Properties}
		for name := range paramNames {
			if strings.Contains(d.props, `"Ref":"`+name+`"`) || strings.Contains(d.props, "${"+name+"}") {
				d.refs = append(d.refs, name)
			}
		}
		out = append(out, d)
		if transform && r.Type == "AWS::SecretsManager::RotationSchedule" && r.Properties["HostedRotationLambda"] != nil {
			out = append(out, resDef{logical: r.Name + "RotationApplication", typ: "AWS::CloudFormation::Stack", props: "{}"})
		}
	}
	return out
}

// pseudo adds the pseudo parameters of a stack to its parameter values.
func (f *Fake) pseudo(s *stack, params map[string]string) map[string]string {
	out := map[string]string{"AWS::StackName": s.name, "AWS::StackId": s.id, "AWS::Region": f.Region, "AWS::AccountId": f.Account}
	for k, v := range params {
		out[k] = v
	}
	return out
}

func withDefaults(t *cft.Template, given map[string]string) map[string]string {
	out := map[string]string{}
	for _, p := range t.Parameters {
		if p.Default != nil {
			out[p.Name] = fmt.Sprint(p.Default)
		}
	}
	for k, v := range given {
		out[k] = v
	}
	return out
}

func (f *Fake) now() time.Time {
	f.clock = f.clock.Add(time.Second)
	return f.clock
}

func (f *Fake) suffix() string {
	f.seq++
	return strings.ToUpper(strconv.FormatInt(int64(1000000+f.seq*7919), 36))
}

func (f *Fake) newStack(name, parent string) *stack {
	id := fmt.Sprintf("arn:aws:cloudformation:%s:%s:stack/%s/%08d-fake-%s", f.Region, f.Account, name, f.seq+1, strings.ToLower(f.suffix()))
	s := &stack{id: id, name: name, parent: parent, params: map[string]string{}, created: f.now()}
	f.stacks[id] = s
	if parent == "" {
		f.byName[name] = id
	}
	return s
}

func (f *Fake) event(s *stack, logical, typ, physical, status, reason string) {
	f.seq++
	s.events = append(s.events, event{id: fmt.Sprintf("%s-%d", logical, f.seq), logical: logical, typ: typ, physical: physical, status: status, reason: reason, at: f.now()})
}

func (f *Fake) stackEvent(s *stack, status, reason string) {
	s.status, s.reason = status, reason
	s.updated = f.clock
	f.event(s, s.name, "AWS::CloudFormation::Stack", s.id, status, reason)
}

// lookup finds a stack by name (live stacks) or ID (any).
func (f *Fake) lookup(nameOrID string) *stack {
	if s, ok := f.stacks[nameOrID]; ok {
		return s
	}
	if id, ok := f.byName[nameOrID]; ok {
		return f.stacks[id]
	}
	return nil
}

func (f *Fake) mustStack(nameOrID string) (*stack, *apiError) {
	s := f.lookup(nameOrID)
	if s == nil {
		return nil, validation("Stack with id %s does not exist", nameOrID)
	}
	return s, nil
}

func (s *stack) physical(d resDef) string {
	for _, r := range s.resources {
		if r.logical == d.logical {
			return r.physical
		}
	}
	return ""
}

func (s *stack) resource(logical string) *resource {
	for _, r := range s.resources {
		if r.logical == logical {
			return r
		}
	}
	return nil
}

// exports maps every export name of the live stacks to its value and stack.
func (f *Fake) exports() map[string][2]string {
	out := map[string][2]string{}
	for _, id := range f.byName {
		s := f.stacks[id]
		for _, o := range s.outputs {
			if o.export != "" {
				out[o.export] = [2]string{o.value, s.name}
			}
		}
	}
	return out
}

// imports lists the export names a stack's template imports, resolved with its parameters.
func (f *Fake) imports(s *stack, tpl *cft.Template, params map[string]string) []string {
	if tpl == nil {
		return nil
	}
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			if arg, ok := t["Fn::ImportValue"]; ok && len(t) == 1 {
				out = append(out, f.resolve(s, params, arg))
				return
			}
			for _, e := range t {
				walk(e)
			}
		case []any:
			for _, e := range t {
				walk(e)
			}
		}
	}
	for _, r := range tpl.Resources {
		walk(r.Properties)
	}
	for _, o := range tpl.Outputs {
		walk(o.Value)
	}
	return out
}

// resolve evaluates the intrinsics the fake understands to a string.
func (f *Fake) resolve(s *stack, params map[string]string, v any) string {
	vars := func(name string) string {
		switch name {
		case "AWS::StackName":
			return s.name
		case "AWS::StackId":
			return s.id
		case "AWS::Region":
			return f.Region
		case "AWS::AccountId":
			return f.Account
		case "AWS::Partition":
			return "aws"
		case "AWS::URLSuffix":
			return "amazonaws.com"
		}
		if v, ok := params[name]; ok {
			return v
		}
		if r := s.resource(name); r != nil {
			return r.physical
		}
		if res, attr, ok := strings.Cut(name, "."); ok {
			return f.getAtt(s, res, attr)
		}
		return ""
	}
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case bool, int, float64:
		return fmt.Sprint(t)
	case []any:
		parts := make([]string, len(t))
		for i, e := range t {
			parts[i] = f.resolve(s, params, e)
		}
		return strings.Join(parts, ",")
	case map[string]any:
		name, arg, ok := cft.Intrinsic(t)
		if !ok {
			return "fake"
		}
		switch name {
		case "Ref":
			return vars(fmt.Sprint(arg))
		case "Fn::Sub":
			str, local := "", map[string]any{}
			switch a := arg.(type) {
			case string:
				str = a
			case []any:
				if len(a) > 0 {
					str, _ = a[0].(string)
				}
				if len(a) > 1 {
					local, _ = a[1].(map[string]any)
				}
			}
			return subVarRE.ReplaceAllStringFunc(str, func(m string) string {
				n := m[2 : len(m)-1]
				if lv, ok := local[n]; ok {
					return f.resolve(s, params, lv)
				}
				return vars(n)
			})
		case "Fn::GetAtt":
			switch a := arg.(type) {
			case []any:
				if len(a) == 2 {
					return f.getAtt(s, fmt.Sprint(a[0]), f.resolve(s, params, a[1]))
				}
			case string:
				res, attr, _ := strings.Cut(a, ".")
				return f.getAtt(s, res, attr)
			}
		case "Fn::Join":
			if a, ok := arg.([]any); ok && len(a) == 2 {
				list, _ := a[1].([]any)
				parts := make([]string, len(list))
				for i, e := range list {
					parts[i] = f.resolve(s, params, e)
				}
				return strings.Join(parts, fmt.Sprint(a[0]))
			}
		case "Fn::ImportValue":
			return f.exports()[f.resolve(s, params, arg)][0]
		case "Fn::If":
			if a, ok := arg.([]any); ok && len(a) == 3 {
				return f.resolve(s, params, a[1])
			}
		case "Fn::Select":
			if a, ok := arg.([]any); ok && len(a) == 2 {
				i, _ := strconv.Atoi(fmt.Sprint(a[0]))
				parts := strings.Split(f.resolve(s, params, a[1]), ",")
				if i < len(parts) {
					return parts[i]
				}
			}
		}
	}
	return "fake"
}

func (f *Fake) getAtt(s *stack, res, attr string) string {
	r := s.resource(res)
	if r == nil {
		return ""
	}
	if c := f.clusters[r.physical]; c != nil {
		switch attr {
		case "Endpoint.Address":
			return c.endpoint
		case "ReadEndpoint.Address":
			return c.reader
		case "Endpoint.Port":
			return "5432"
		}
	}
	if attr == "Arn" {
		return fmt.Sprintf("arn:aws:fake:%s:%s:%s", f.Region, f.Account, r.physical)
	}
	return r.physical + "-" + strings.ToLower(strings.ReplaceAll(attr, ".", "-"))
}

func (f *Fake) setOutputs(s *stack) {
	s.outputs = nil
	outputs := s.tpl.Outputs
	if ev, err := s.tpl.Evaluate(f.pseudo(s, s.params)); err == nil {
		outputs = ev.ActiveOutputs()
	}
	for _, o := range outputs {
		out := output{key: o.Name, description: o.Description, value: f.resolve(s, s.params, o.Value)}
		if o.Export != nil {
			if m, ok := o.Export.(map[string]any); ok && m["Name"] != nil {
				out.export = f.resolve(s, s.params, m["Name"])
			} else {
				out.export = f.resolve(s, s.params, o.Export)
			}
		}
		s.outputs = append(s.outputs, out)
	}
}

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
		f.clusters[c.id] = c
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

// ---- operations ----

type task struct {
	action string // Add, Modify, Remove
	def    resDef
}

type operation struct {
	kind      string // CREATE, UPDATE, DELETE
	tasks     []task
	cleanup   []task
	k         int
	phase     string // run, cleanup, rollback
	done      []task // finished tasks, for rollback
	prevBody  string
	prevTpl   *cft.Template
	prevParam map[string]string
	prevRes   []*resource
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
		if op.k < len(op.tasks) {
			f.startTask(s, op.tasks[op.k])
		}
		if op.k >= 1 {
			t := op.tasks[op.k-1]
			reason, fail := f.failures[s.name+"/"+t.def.logical]
			if !fail && t.def.typ == "AWS::CloudFormation::Stack" && t.action == "Add" {
				reason, fail = f.nestedFailure(s, t)
			}
			if fail {
				delete(f.failures, s.name+"/"+t.def.logical)
				f.event(s, t.def.logical, t.def.typ, s.physical(t.def), verbs[t.action][2], reason)
				if op.k < len(op.tasks) {
					n := op.tasks[op.k]
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
			f.finishTask(s, t)
			op.done = append(op.done, t)
		}
		op.k++
		if op.k > len(op.tasks) || len(op.tasks) == 0 {
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

// ---- the API ----

func (f *Fake) cloudFormation(action string, form url.Values) ([]x, *apiError) {
	switch action {
	case "DescribeStacks":
		return f.describeStacks(form)
	case "DescribeStackEvents":
		return f.describeStackEvents(form)
	case "CreateChangeSet":
		return f.createChangeSet(form)
	case "DescribeChangeSet":
		return f.describeChangeSet(form)
	case "ExecuteChangeSet":
		return f.executeChangeSet(form)
	case "DeleteChangeSet":
		cs, err := f.findChangeSet(form)
		if err != nil {
			return nil, err
		}
		delete(f.changeSets, cs.arn)
		return nil, nil
	case "DeleteStack":
		return f.deleteStack(form)
	case "ListStackResources":
		s, err := f.mustStack(form.Get("StackName"))
		if err != nil {
			return nil, err
		}
		var items []x
		for _, r := range s.resources {
			items = append(items, el("", tx("LogicalResourceId", r.logical), tx("PhysicalResourceId", r.physical), tx("ResourceType", r.typ),
				tx("ResourceStatus", "CREATE_COMPLETE"), tx("LastUpdatedTimestamp", ts(s.updated))))
		}
		return []x{members("StackResourceSummaries", "member", items)}, nil
	case "ListImports":
		name := form.Get("ExportName")
		var items []x
		for _, id := range sortedIDs(f.byName) {
			s := f.stacks[id]
			for _, imp := range f.imports(s, s.tpl, s.params) {
				if imp == name {
					items = append(items, tx("", s.name))
					break
				}
			}
		}
		if len(items) == 0 {
			return nil, validation("Export '%s' is not imported by any stack.", name)
		}
		return []x{members("Imports", "member", items)}, nil
	}
	return nil, &apiError{http.StatusBadRequest, "InvalidAction", "awsfake: CloudFormation action not faked: " + action}
}

func sortedIDs(byName map[string]string) []string {
	var ids []string
	for _, id := range byName {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func (f *Fake) describeStacks(form url.Values) ([]x, *apiError) {
	var list []*stack
	if n := form.Get("StackName"); n != "" {
		s, err := f.mustStack(n)
		if err != nil {
			return nil, err
		}
		// Each look at a stack with an operation under way moves the operation on by one step.
		f.advance(s)
		list = append(list, s)
	} else {
		for _, id := range sortedIDs(f.byName) {
			list = append(list, f.stacks[id])
		}
	}
	var items []x
	for _, s := range list {
		kids := []x{tx("StackId", s.id), tx("StackName", s.name), tx("StackStatus", s.status), tx("CreationTime", ts(s.created))}
		if s.reason != "" {
			kids = append(kids, tx("StackStatusReason", s.reason))
		}
		if !s.updated.IsZero() {
			kids = append(kids, tx("LastUpdatedTime", ts(s.updated)))
		}
		if s.parent != "" {
			kids = append(kids, tx("ParentId", s.parent), tx("RootId", s.parent))
		}
		var ps []x
		for _, k := range sortedKeys(s.params) {
			ps = append(ps, el("", tx("ParameterKey", k), tx("ParameterValue", s.params[k])))
		}
		kids = append(kids, members("Parameters", "member", ps))
		var os []x
		for _, o := range s.outputs {
			oe := el("", tx("OutputKey", o.key), tx("OutputValue", o.value))
			if o.description != "" {
				oe.kids = append(oe.kids, tx("Description", o.description))
			}
			if o.export != "" {
				oe.kids = append(oe.kids, tx("ExportName", o.export))
			}
			os = append(os, oe)
		}
		kids = append(kids, members("Outputs", "member", os))
		var cs []x
		for _, c := range s.capabilities {
			cs = append(cs, tx("", c))
		}
		kids = append(kids, members("Capabilities", "member", cs))
		items = append(items, el("", kids...))
	}
	return []x{members("Stacks", "member", items)}, nil
}

func sortedKeys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (f *Fake) describeStackEvents(form url.Values) ([]x, *apiError) {
	s, err := f.mustStack(form.Get("StackName"))
	if err != nil {
		return nil, err
	}
	size := f.EventPageSize
	if size <= 0 {
		size = 100
	}
	start, _ := strconv.Atoi(form.Get("NextToken"))
	var items []x
	n := len(s.events)
	end := min(start+size, n)
	for i := start; i < end; i++ {
		e := s.events[n-1-i] // newest first
		kids := []x{tx("EventId", e.id), tx("StackId", s.id), tx("StackName", s.name), tx("LogicalResourceId", e.logical),
			tx("PhysicalResourceId", e.physical), tx("ResourceType", e.typ), tx("ResourceStatus", e.status), tx("Timestamp", ts(e.at))}
		if e.reason != "" {
			kids = append(kids, tx("ResourceStatusReason", e.reason))
		}
		items = append(items, el("", kids...))
	}
	out := []x{members("StackEvents", "member", items)}
	if end < n {
		out = append(out, tx("NextToken", strconv.Itoa(end)))
	}
	return out, nil
}

func (f *Fake) createChangeSet(form url.Values) ([]x, *apiError) {
	name, csName := form.Get("StackName"), form.Get("ChangeSetName")
	if name == "" || csName == "" {
		return nil, validation("StackName and ChangeSetName are required")
	}
	body := form.Get("TemplateBody")
	if u := form.Get("TemplateURL"); u != "" {
		b, ok := f.objectFromURL(u)
		if !ok {
			return nil, validation("S3 error: Access Denied for TemplateURL %s", u)
		}
		body = string(b)
	}
	if len(form.Get("TemplateBody")) > 51200 {
		return nil, validation("1 validation error detected: Value at 'templateBody' failed to satisfy constraint: Member must have length less than or equal to 51200")
	}
	tpl, perr := parseTemplate(body)
	if perr != nil {
		return nil, validation("Template format error: %v", perr)
	}
	caps := memberValues(form, "Capabilities")
	has := func(c string) bool {
		for _, v := range caps {
			if v == c {
				return true
			}
		}
		return false
	}
	if len(tpl.Transform) > 0 && !has("CAPABILITY_AUTO_EXPAND") {
		return nil, &apiError{400, "InsufficientCapabilitiesException", "Requires capabilities : [CAPABILITY_AUTO_EXPAND]"}
	}
	for _, r := range tpl.Resources {
		if strings.HasPrefix(r.Type, "AWS::IAM::") && !has("CAPABILITY_IAM") && !has("CAPABILITY_NAMED_IAM") {
			return nil, &apiError{400, "InsufficientCapabilitiesException", "Requires capabilities : [CAPABILITY_IAM]"}
		}
	}
	given := map[string]string{}
	for _, p := range memberStructs(form, "Parameters") {
		given[p["ParameterKey"]] = p["ParameterValue"]
	}
	for k := range given {
		if tpl.Parameter(k) == nil {
			return nil, validation("Parameters: [%s] do not exist in the template", k)
		}
	}
	params := withDefaults(tpl, given)
	var missing []string
	for _, p := range tpl.Parameters {
		if _, ok := params[p.Name]; !ok {
			missing = append(missing, p.Name)
		}
	}
	if len(missing) > 0 {
		return nil, validation("Parameters: [%s] must have values", strings.Join(missing, ", "))
	}

	typ := form.Get("ChangeSetType")
	if typ == "" {
		typ = "UPDATE"
	}
	s := f.lookup(name)
	switch typ {
	case "CREATE":
		if s != nil && s.status != "REVIEW_IN_PROGRESS" {
			return nil, &apiError{400, "AlreadyExistsException", fmt.Sprintf("Stack [%s] already exists and cannot be created again with the changeSet [%s].", name, csName)}
		}
		if s == nil {
			s = f.newStack(name, "")
			f.stackEvent(s, "REVIEW_IN_PROGRESS", "User Initiated")
		}
	case "UPDATE":
		if s == nil {
			return nil, validation("Stack [%s] does not exist", name)
		}
		if strings.HasSuffix(s.status, "_IN_PROGRESS") || s.status == "ROLLBACK_COMPLETE" || strings.HasSuffix(s.status, "_FAILED") {
			return nil, validation("Stack:%s is in %s state and can not be updated.", s.id, s.status)
		}
	default:
		return nil, validation("ChangeSetType %q is not faked", typ)
	}
	cs := &changeSet{arn: fmt.Sprintf("arn:aws:cloudformation:%s:%s:changeSet/%s/%s", f.Region, f.Account, csName, strings.ToLower(f.suffix())),
		name: csName, stackID: s.id, typ: typ, status: "CREATE_PENDING", execStatus: "UNAVAILABLE",
		body: body, tpl: tpl, params: params, capabilities: caps, created: f.now()}
	f.changeSets[cs.arn] = cs
	return []x{tx("Id", cs.arn), tx("StackId", s.id)}, nil
}

func (f *Fake) findChangeSet(form url.Values) (*changeSet, *apiError) {
	n := form.Get("ChangeSetName")
	if cs, ok := f.changeSets[n]; ok {
		return cs, nil
	}
	s := f.lookup(form.Get("StackName"))
	for _, cs := range f.changeSets {
		if cs.name == n && s != nil && cs.stackID == s.id {
			return cs, nil
		}
	}
	return nil, &apiError{404, "ChangeSetNotFound", fmt.Sprintf("ChangeSet [%s] does not exist", n)}
}

// computeChanges fills a change set's changes, or fails it as CloudFormation does.
func (f *Fake) computeChanges(cs *changeSet) {
	s := f.stacks[cs.stackID]
	for _, imp := range f.imports(s, cs.tpl, cs.params) {
		if _, ok := f.exports()[imp]; !ok {
			cs.status, cs.reason = "FAILED", fmt.Sprintf("No export named %s found. Rollback requested by user.", imp)
			return
		}
	}
	newDefs := expand(cs.tpl, f.pseudo(s, cs.params))
	if cs.typ == "CREATE" {
		for _, d := range newDefs {
			cs.changes = append(cs.changes, change{action: "Add", logical: d.logical, typ: d.typ})
		}
	} else {
		changedParams := map[string]bool{}
		for k, v := range cs.params {
			if s.params[k] != v {
				changedParams[k] = true
			}
		}
		for _, d := range newDefs {
			r := s.resource(d.logical)
			switch {
			case r == nil:
				cs.changes = append(cs.changes, change{action: "Add", logical: d.logical, typ: d.typ})
			case r.typ != d.typ:
				cs.changes = append(cs.changes, change{action: "Modify", logical: d.logical, typ: d.typ, physical: r.physical, replacement: "True"})
			default:
				modified := r.props != d.props
				for _, p := range d.refs {
					modified = modified || changedParams[p]
				}
				if modified {
					cs.changes = append(cs.changes, change{action: "Modify", logical: d.logical, typ: d.typ, physical: r.physical, replacement: "False"})
				}
			}
		}
		for _, r := range s.resources {
			found := false
			for _, d := range newDefs {
				found = found || d.logical == r.logical
			}
			if !found {
				cs.changes = append(cs.changes, change{action: "Remove", logical: r.logical, typ: r.typ, physical: r.physical})
			}
		}
		if len(cs.changes) == 0 && cs.body == s.body && len(changedParams) == 0 {
			cs.status = "FAILED"
			cs.reason = "The submitted information didn't contain changes. Submit different information to create a change set."
			return
		}
	}
	cs.status, cs.execStatus = "CREATE_COMPLETE", "AVAILABLE"
}

func (f *Fake) describeChangeSet(form url.Values) ([]x, *apiError) {
	cs, err := f.findChangeSet(form)
	if err != nil {
		return nil, err
	}
	switch cs.status { // one status per look
	case "CREATE_PENDING":
		cs.status = "CREATE_IN_PROGRESS"
	case "CREATE_IN_PROGRESS":
		f.computeChanges(cs)
	}
	s := f.stacks[cs.stackID]
	var changes []x
	for _, c := range cs.changes {
		rc := []x{tx("Action", c.action), tx("LogicalResourceId", c.logical), tx("ResourceType", c.typ)}
		if c.physical != "" {
			rc = append(rc, tx("PhysicalResourceId", c.physical))
		}
		if c.replacement != "" {
			rc = append(rc, tx("Replacement", c.replacement))
		}
		changes = append(changes, el("", tx("Type", "Resource"), el("ResourceChange", rc...)))
	}
	var ps []x
	for _, k := range sortedKeys(cs.params) {
		ps = append(ps, el("", tx("ParameterKey", k), tx("ParameterValue", cs.params[k])))
	}
	out := []x{tx("ChangeSetName", cs.name), tx("ChangeSetId", cs.arn), tx("StackId", s.id), tx("StackName", s.name),
		tx("Status", cs.status), tx("ExecutionStatus", cs.execStatus), tx("CreationTime", ts(cs.created)),
		members("Changes", "member", changes), members("Parameters", "member", ps)}
	if cs.reason != "" {
		out = append(out, tx("StatusReason", cs.reason))
	}
	return out, nil
}

func (f *Fake) executeChangeSet(form url.Values) ([]x, *apiError) {
	cs, err := f.findChangeSet(form)
	if err != nil {
		return nil, err
	}
	if cs.execStatus != "AVAILABLE" {
		return nil, &apiError{400, "InvalidChangeSetStatus", fmt.Sprintf("ChangeSet [%s] cannot be executed in its current status of [%s]", cs.arn, cs.status)}
	}
	s := f.stacks[cs.stackID]
	for arn, other := range f.changeSets { // CloudFormation drops a stack's other change sets
		if other.stackID == s.id {
			delete(f.changeSets, arn)
		}
	}
	op := &operation{kind: cs.typ, phase: "run", prevBody: s.body, prevTpl: s.tpl, prevParam: s.params}
	op.prevRes = append(op.prevRes, s.resources...)
	defs := expand(cs.tpl, f.pseudo(s, cs.params))
	for _, c := range cs.changes {
		var d resDef
		for _, nd := range defs {
			if nd.logical == c.logical {
				d = nd
			}
		}
		if c.action == "Remove" {
			d = resDef{logical: c.logical, typ: c.typ}
			op.cleanup = append(op.cleanup, task{action: "Remove", def: d})
			continue
		}
		op.tasks = append(op.tasks, task{action: c.action, def: d})
	}
	s.body, s.tpl, s.params, s.capabilities = cs.body, cs.tpl, cs.params, cs.capabilities
	s.op = op
	f.stackEvent(s, cs.typ+"_IN_PROGRESS", "User Initiated")
	return nil, nil
}

func (f *Fake) deleteStack(form url.Values) ([]x, *apiError) {
	s := f.lookup(form.Get("StackName"))
	if s == nil || s.deleted || s.status == "DELETE_IN_PROGRESS" {
		return nil, nil // CloudFormation answers a delete of a missing stack with success
	}
	for _, o := range s.outputs {
		if o.export == "" {
			continue
		}
		for _, id := range sortedIDs(f.byName) {
			other := f.stacks[id]
			if other == s {
				continue
			}
			for _, imp := range f.imports(other, other.tpl, other.params) {
				if imp == o.export {
					return nil, validation("Export %s cannot be deleted as it is in use by %s", o.export, other.name)
				}
			}
		}
	}
	s.op = &operation{kind: "DELETE", phase: "run"}
	f.stackEvent(s, "DELETE_IN_PROGRESS", "User Initiated")
	return nil, nil
}
