package awsfake

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
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

type change struct {
	action, logical, typ, physical, replacement string
	// source is the ChangeSource of its detail (DirectModification, ParameterReference,
	// Automatic, ResourceAttribute); causing names what a ResourceAttribute change follows.
	source, causing string
}

// resDef is a resource as a template declares it (after the transforms the fake knows).
type resDef struct {
	logical, typ, props, deletionPolicy string
	raw                                 map[string]any
	refs                                []string
	// deps are the resources of the template this one waits for: DependsOn, Ref, Fn::GetAtt and
	// Fn::Sub references.
	deps []string
	// transformed marks the nested stack the Secrets Manager transform makes of a hosted
	// rotation.
	transformed bool
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
		for _, id := range slices.Sorted(maps.Values(f.byName)) {
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
		for _, id := range slices.Sorted(maps.Values(f.byName)) {
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
		for _, k := range slices.Sorted(maps.Keys(s.params)) {
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

func (f *Fake) deleteStack(form url.Values) ([]x, *apiError) {
	s := f.lookup(form.Get("StackName"))
	if s == nil || s.deleted || s.status == "DELETE_IN_PROGRESS" {
		return nil, nil // CloudFormation answers a delete of a missing stack with success
	}
	inUse := ""
	for _, o := range s.outputs {
		if o.export == "" {
			continue
		}
		for _, id := range slices.Sorted(maps.Values(f.byName)) {
			other := f.stacks[id]
			if other == s {
				continue
			}
			for _, imp := range f.imports(other, other.tpl, other.params) {
				// CloudFormation accepts the request; the deletion then fails.
				if imp == o.export && inUse == "" {
					inUse = fmt.Sprintf("Export %s cannot be deleted as it is in use by %s", o.export, other.name)
				}
			}
		}
	}
	s.op = &operation{kind: "DELETE", phase: "run", failReason: inUse}
	f.stackEvent(s, "DELETE_IN_PROGRESS", "User Initiated")
	return nil, nil
}
