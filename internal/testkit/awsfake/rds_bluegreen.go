package awsfake

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// The fake's RDS Blue/Green deployments, with RDS's status sequence: PROVISIONING, AVAILABLE,
// SWITCHOVER_IN_PROGRESS, SWITCHOVER_COMPLETED. As with failovers, a transitional status lasts
// BlueGreenSteps DescribeBlueGreenDeployments calls. At the switchover's end the green cluster
// takes the blue one's name and endpoints and runs the target version; the blue cluster stays,
// renamed <id>-old1 with its instances, until deleted. Parameter groups are recorded.

// BlueGreenSteps is how many DescribeBlueGreenDeployments calls a transitional status lasts.
const BlueGreenSteps = 2

type blueGreen struct {
	id, name, source, green, version string
	status                           string
	steps                            int
	deleted                          bool
}

// ParameterGroup is a DB or DB cluster parameter group created through the API.
type ParameterGroup struct {
	Name, Family string
	Cluster      bool
	Parameters   map[string]string
}

// PutCluster creates a cluster directly, not through a stack, with its instances (the first is
// the writer), as a test's starting point.
func (f *Fake) PutCluster(id, version string, instances ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clusters[id] = &cluster{id: id, version: version, members: slices.Clone(instances),
		endpoint: id + ".cluster-fake." + f.Region + ".rds.amazonaws.com", reader: id + ".cluster-ro-fake." + f.Region + ".rds.amazonaws.com"}
}

// ClusterVersion returns a cluster's engine version and whether the cluster exists.
func (f *Fake) ClusterVersion(id string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.clusters[id]
	if !ok {
		return "", false
	}
	return c.version, true
}

// ParameterGroups lists the parameter groups created through the API, in order.
func (f *Fake) ParameterGroups() []ParameterGroup {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.paramGroups)
}

func (f *Fake) bgXML(b *blueGreen) x {
	var sw []x
	src := f.clusters[b.source]
	if src != nil {
		sw = append(sw, el("", tx("SourceMember", f.clusterArn(b.source)), tx("TargetMember", f.clusterArn(b.green)), tx("Status", switchoverMemberStatus(b.status))))
		for _, in := range f.instancesOf(src) {
			sw = append(sw, el("", tx("SourceMember", f.instanceArn(in)), tx("TargetMember", f.instanceArn(in+"-green")), tx("Status", switchoverMemberStatus(b.status))))
		}
	}
	return el("", tx("BlueGreenDeploymentIdentifier", b.id), tx("BlueGreenDeploymentName", b.name),
		tx("Source", f.clusterArn(b.source)), tx("Target", f.clusterArn(b.green)), tx("Status", b.status),
		members("SwitchoverDetails", "member", sw), tx("CreateTime", ts(f.clock)))
}

func switchoverMemberStatus(status string) string {
	switch status {
	case "PROVISIONING":
		return "PROVISIONING"
	case "SWITCHOVER_IN_PROGRESS":
		return "SWITCHOVER_IN_PROGRESS"
	case "SWITCHOVER_COMPLETED":
		return "SWITCHOVER_COMPLETED"
	}
	return "AVAILABLE"
}

func (f *Fake) clusterArn(id string) string {
	return fmt.Sprintf("arn:aws:rds:%s:%s:cluster:%s", f.Region, f.Account, id)
}

func (f *Fake) instanceArn(id string) string {
	return fmt.Sprintf("arn:aws:rds:%s:%s:db:%s", f.Region, f.Account, id)
}

// advance moves a deployment one step along RDS's sequence; the switchover's last step swaps
// the clusters.
func (f *Fake) advanceBG(b *blueGreen) {
	if b.status != "PROVISIONING" && b.status != "SWITCHOVER_IN_PROGRESS" {
		return
	}
	if b.steps--; b.steps > 0 {
		return
	}
	if b.status == "PROVISIONING" {
		b.status = "AVAILABLE"
		return
	}
	b.status = "SWITCHOVER_COMPLETED"
	blue := f.clusters[b.source]
	old := *blue
	old.id = blue.id + "-old1"
	old.endpoint, old.reader = old.id+".cluster-fake."+f.Region+".rds.amazonaws.com", old.id+".cluster-ro-fake."+f.Region+".rds.amazonaws.com"
	old.members = nil
	for _, in := range f.instancesOf(blue) {
		old.members = append(old.members, in+"-old1")
	}
	f.clusters[old.id] = &old
	// The green cluster now carries the blue one's name, endpoints and instance names.
	blue.members = f.instancesOf(blue)
	blue.version = b.version
	delete(f.clusters, b.green)
}

func (f *Fake) blueGreen(action string, form url.Values) ([]x, *apiError, bool) {
	bgNotFound := func(id string) *apiError {
		return &apiError{http.StatusNotFound, "BlueGreenDeploymentNotFoundFault", fmt.Sprintf("BlueGreenDeploymentIdentifier %s not found.", id)}
	}
	switch action {
	case "CreateDBClusterParameterGroup", "CreateDBParameterGroup":
		cl := action == "CreateDBClusterParameterGroup"
		name := form.Get(strings.TrimPrefix(action, "Create") + "Name")
		pg := ParameterGroup{Name: name, Family: form.Get("DBParameterGroupFamily"), Cluster: cl, Parameters: map[string]string{}}
		f.paramGroups = append(f.paramGroups, pg)
		return []x{el(strings.TrimPrefix(action, "Create"), tx(strings.TrimPrefix(action, "Create")+"Name", name), tx("DBParameterGroupFamily", pg.Family))}, nil, true
	case "ModifyDBClusterParameterGroup", "ModifyDBParameterGroup":
		field := strings.TrimPrefix(action, "Modify") + "Name"
		name := form.Get(field)
		for i := range f.paramGroups {
			if f.paramGroups[i].Name != name {
				continue
			}
			for n := 1; ; n++ {
				k := form.Get(fmt.Sprintf("Parameters.Parameter.%d.ParameterName", n))
				if k == "" {
					break
				}
				f.paramGroups[i].Parameters[k] = form.Get(fmt.Sprintf("Parameters.Parameter.%d.ParameterValue", n))
			}
			return []x{tx(field, name)}, nil, true
		}
		return nil, &apiError{http.StatusNotFound, "DBParameterGroupNotFound", "parameter group " + name + " not found"}, true
	case "CreateBlueGreenDeployment":
		src := form.Get("Source")
		id := src[strings.LastIndex(src, ":")+1:]
		c := f.clusters[id]
		if c == nil {
			return nil, &apiError{http.StatusNotFound, "DBClusterNotFoundFault", fmt.Sprintf("DBCluster %s not found.", id)}, true
		}
		for _, b := range f.blueGreens {
			if b.source == id && !b.deleted {
				return nil, &apiError{http.StatusBadRequest, "BlueGreenDeploymentAlreadyExistsFault", "a blue/green deployment already exists for " + id}, true
			}
		}
		target := form.Get("TargetEngineVersion")
		if !slices.Contains(f.catalog().Versions, target) {
			return nil, &apiError{http.StatusBadRequest, "InvalidParameterCombination", fmt.Sprintf("Cannot find upgrade target from %s with requested version %s.", c.version, target)}, true
		}
		f.seq++
		b := &blueGreen{id: fmt.Sprintf("bgd-fake%06d", f.seq), name: form.Get("BlueGreenDeploymentName"), source: id,
			green: id + "-green-" + strings.ToLower(f.suffix()), version: target, status: "PROVISIONING", steps: BlueGreenSteps}
		f.clusters[b.green] = &cluster{id: b.green, version: target, members: []string{}}
		f.blueGreens = append(f.blueGreens, b)
		return []x{f.bgXMLNamed(b)}, nil, true
	case "DescribeBlueGreenDeployments":
		id := form.Get("BlueGreenDeploymentIdentifier")
		var items []x
		for _, b := range f.blueGreens {
			if b.deleted || id != "" && b.id != id {
				continue
			}
			f.advanceBG(b)
			items = append(items, f.bgXML(b))
		}
		if id != "" && len(items) == 0 {
			return nil, bgNotFound(id), true
		}
		return []x{members("BlueGreenDeployments", "member", items)}, nil, true
	case "SwitchoverBlueGreenDeployment":
		b := f.findBG(form.Get("BlueGreenDeploymentIdentifier"))
		if b == nil {
			return nil, bgNotFound(form.Get("BlueGreenDeploymentIdentifier")), true
		}
		if b.status != "AVAILABLE" {
			return nil, &apiError{http.StatusBadRequest, "InvalidBlueGreenDeploymentStateFault", "The blue/green deployment " + b.id + " is not in AVAILABLE state (" + b.status + ")."}, true
		}
		b.status, b.steps = "SWITCHOVER_IN_PROGRESS", BlueGreenSteps
		return []x{f.bgXMLNamed(b)}, nil, true
	case "DeleteBlueGreenDeployment":
		b := f.findBG(form.Get("BlueGreenDeploymentIdentifier"))
		if b == nil {
			return nil, bgNotFound(form.Get("BlueGreenDeploymentIdentifier")), true
		}
		if form.Get("DeleteTarget") == "true" && b.status != "SWITCHOVER_COMPLETED" {
			delete(f.clusters, b.green)
		}
		b.deleted = true
		return []x{f.bgXMLNamed(b)}, nil, true
	case "DeleteDBInstance":
		id := form.Get("DBInstanceIdentifier")
		for _, c := range f.clusters {
			if i := slices.Index(c.members, id); i >= 0 {
				c.members = slices.Delete(c.members, i, i+1)
				return []x{el("DBInstance", tx("DBInstanceIdentifier", id), tx("DBInstanceStatus", "deleting"))}, nil, true
			}
		}
		return nil, &apiError{http.StatusNotFound, "DBInstanceNotFound", "DBInstance " + id + " not found."}, true
	case "DeleteDBCluster":
		id := form.Get("DBClusterIdentifier")
		c := f.clusters[id]
		switch {
		case c == nil:
			return nil, &apiError{http.StatusNotFound, "DBClusterNotFoundFault", fmt.Sprintf("DBCluster %s not found.", id)}, true
		case c.protected:
			return nil, &apiError{http.StatusBadRequest, "InvalidParameterCombination", "Cannot delete protected Cluster, please disable deletion protection and try again."}, true
		case len(c.members) > 0:
			return nil, &apiError{http.StatusBadRequest, "InvalidDBClusterStateFault", "Cluster cannot be deleted, it still contains DB instances in non-deleting state."}, true
		}
		if snap := form.Get("FinalDBSnapshotIdentifier"); snap != "" {
			f.snapshots = append(f.snapshots, &snapshot{id: snap, cluster: id, created: f.clock})
		}
		delete(f.clusters, id)
		return []x{el("DBCluster", tx("DBClusterIdentifier", id), tx("Status", "deleting"))}, nil, true
	}
	return nil, nil, false
}

func (f *Fake) bgXMLNamed(b *blueGreen) x {
	e := f.bgXML(b)
	e.name = "BlueGreenDeployment"
	return e
}

func (f *Fake) findBG(id string) *blueGreen {
	for _, b := range f.blueGreens {
		if b.id == id && !b.deleted {
			return b
		}
	}
	return nil
}
