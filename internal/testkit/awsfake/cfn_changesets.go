package awsfake

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
)

// The fake's CloudFormation, change sets: creation, the changes computed against the stack,
// description and execution.

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
		if slices.Contains(caps, c) {
			return true
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
		var retyped []string
		for _, d := range newDefs {
			if r := s.resource(d.logical); r != nil && r.typ != d.typ && strings.HasPrefix(r.typ, "Custom::") {
				retyped = append(retyped, d.logical)
			}
		}
		if len(retyped) > 0 {
			cs.status = "FAILED"
			cs.reason = fmt.Sprintf("Update of resource type is not permitted. The new template modifies resource type of the following resources: [%s]", strings.Join(retyped, ", "))
			return
		}
		for _, d := range newDefs {
			r := s.resource(d.logical)
			switch {
			case r == nil:
				cs.changes = append(cs.changes, change{action: "Add", logical: d.logical, typ: d.typ})
			case r.typ != d.typ:
				cs.changes = append(cs.changes, change{action: "Modify", logical: d.logical, typ: d.typ, physical: r.physical, replacement: "True"})
			default:
				source := ""
				if r.props != d.props {
					source = "DirectModification"
				}
				for _, p := range d.refs {
					if changedParams[p] && source == "" {
						source = "ParameterReference"
					}
				}
				switch {
				case source != "":
					cs.changes = append(cs.changes, change{action: "Modify", logical: d.logical, typ: d.typ, physical: r.physical, replacement: "False", source: source})
				case d.transformed:
					// The Secrets Manager transform's rotation applications are nested stacks,
					// which CloudFormation updates on every update of the stack, and their
					// schedules follow the nested stacks' outputs: never "no changes".
					cs.changes = append(cs.changes, change{action: "Modify", logical: d.logical, typ: d.typ, physical: r.physical, replacement: "False", source: "Automatic"})
					sched := strings.TrimSuffix(d.logical, "RotationApplication")
					if sr := s.resource(sched); sr != nil {
						cs.changes = append(cs.changes, change{action: "Modify", logical: sched, typ: sr.typ, physical: sr.physical, replacement: "Conditional",
							source: "ResourceAttribute", causing: d.logical + ".Outputs.RotationLambdaARN"})
					}
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
		if c.source != "" {
			evaluation := "Static"
			if c.source == "ResourceAttribute" {
				evaluation = "Dynamic"
			}
			detail := []x{tx("ChangeSource", c.source), tx("Evaluation", evaluation), el("Target", tx("Attribute", "Properties"))}
			if c.causing != "" {
				detail = append(detail, tx("CausingEntity", c.causing))
			}
			rc = append(rc, members("Details", "member", []x{el("", detail...)}))
		}
		changes = append(changes, el("", tx("Type", "Resource"), el("ResourceChange", rc...)))
	}
	var ps []x
	for _, k := range slices.Sorted(maps.Keys(cs.params)) {
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
	op := &operation{kind: cs.typ, phase: "run", prevBody: s.body, prevTpl: s.tpl, prevParam: s.params,
		started: map[string]bool{}, finished: map[string]bool{}}
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
