package awsfake

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"time"
)

// The fake's RDS: the clusters that stacks create, their deletion protection, their members and
// failover, and the final snapshots left when a stack deletes them.

type cluster struct {
	id, endpoint, reader string
	version              string   // EngineVersion
	members              []string // instances of a cluster put by a test or made by a Blue/Green deployment
	protected            bool
	// writer is the writer instance after a failover ("" until then: the first instance the
	// stack created). During a failover, target is the instance being promoted and steps the
	// DescribeDBClusters calls of this cluster left before it is done.
	writer, target string
	steps          int
	// logExports are EnableCloudwatchLogsExports: RDS makes their log groups once an instance
	// runs.
	logExports []string
}

// FailoverSteps is how many DescribeDBClusters calls of a cluster a failover takes: the cluster
// is failing-over for that many answers, then available with the new writer.
const FailoverSteps = 2

// instancesOf lists the DB instances of the stack that holds a cluster, in creation order: the
// fake's cluster members.
func (f *Fake) instancesOf(c *cluster) []string {
	if c.members != nil {
		return c.members
	}
	for _, s := range f.stacks {
		if s.deleted {
			continue
		}
		holds := false
		var ids []string
		for _, r := range s.resources {
			switch {
			case r.typ == "AWS::RDS::DBCluster" && r.physical == c.id:
				holds = true
			case r.typ == "AWS::RDS::DBInstance":
				ids = append(ids, r.physical)
			}
		}
		if holds {
			return ids
		}
	}
	return nil
}

// writerOf is the cluster's current writer instance.
func (f *Fake) writerOf(c *cluster) string {
	ids := f.instancesOf(c)
	if c.writer != "" && slices.Contains(ids, c.writer) {
		return c.writer
	}
	if len(ids) > 0 {
		return ids[0]
	}
	return ""
}

// ClusterMembers returns a cluster's instances and its writer.
func (f *Fake) ClusterMembers(clusterID string) (instances []string, writer string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.clusters[clusterID]
	if c == nil {
		return nil, ""
	}
	return f.instancesOf(c), f.writerOf(c)
}

type snapshot struct {
	id, cluster string
	created     time.Time
}

func (f *Fake) clusterXML(c *cluster) x {
	status := "available"
	if c.target != "" {
		status = "failing-over"
	}
	writer := f.writerOf(c)
	var mem []x
	for i, id := range f.instancesOf(c) {
		mem = append(mem, el("", tx("DBInstanceIdentifier", id), tx("IsClusterWriter", fmt.Sprint(id == writer)),
			tx("DBClusterParameterGroupStatus", "in-sync"), tx("PromotionTier", fmt.Sprint(min(i, 1)))))
	}
	var exports []x
	for _, e := range c.logExports {
		exports = append(exports, tx("", e))
	}
	return el("DBCluster", tx("DBClusterIdentifier", c.id), tx("DBClusterArn", fmt.Sprintf("arn:aws:rds:%s:%s:cluster:%s", f.Region, f.Account, c.id)),
		tx("Status", status), tx("Engine", "aurora-postgresql"), tx("EngineVersion", c.version), tx("Endpoint", c.endpoint), tx("ReaderEndpoint", c.reader),
		tx("Port", "5432"), tx("DeletionProtection", fmt.Sprint(c.protected)), members("DBClusterMembers", "DBClusterMember", mem),
		members("EnabledCloudwatchLogsExports", "member", exports))
}

// advance moves a failover under way one step; the last step makes the target the writer.
func (c *cluster) advance() {
	if c.target == "" {
		return
	}
	if c.steps--; c.steps <= 0 {
		c.writer, c.target = c.target, ""
	}
}

func (f *Fake) rds(action string, form url.Values) ([]x, *apiError) {
	notFound := func(id string) *apiError {
		return &apiError{http.StatusNotFound, "DBClusterNotFoundFault", fmt.Sprintf("DBCluster %s not found.", id)}
	}
	switch action {
	case "DescribeDBClusters":
		id := form.Get("DBClusterIdentifier")
		var items []x
		var ids []string
		for k := range f.clusters {
			ids = append(ids, k)
		}
		sort.Strings(ids)
		for _, k := range ids {
			if id == "" || id == k {
				if id == k {
					f.clusters[k].advance()
				}
				items = append(items, f.clusterXML(f.clusters[k]))
			}
		}
		if id != "" && len(items) == 0 {
			return nil, notFound(id)
		}
		return []x{members("DBClusters", "DBCluster", items)}, nil
	case "ModifyDBCluster":
		id := form.Get("DBClusterIdentifier")
		c := f.clusters[id]
		if c == nil {
			return nil, notFound(id)
		}
		if v := form.Get("DeletionProtection"); v != "" {
			c.protected = v == "true"
		}
		return []x{f.clusterXML(c)}, nil
	case "FailoverDBCluster":
		// As RDS: the cluster must be available and have a reader; the target, when named, must
		// be one of its readers; without one, RDS picks a reader (here the first).
		id := form.Get("DBClusterIdentifier")
		c := f.clusters[id]
		if c == nil {
			return nil, notFound(id)
		}
		if c.target != "" {
			return nil, &apiError{http.StatusBadRequest, "InvalidDBClusterStateFault", fmt.Sprintf("DBCluster %s is not in available state (failing-over).", id)}
		}
		writer := f.writerOf(c)
		var readers []string
		for _, in := range f.instancesOf(c) {
			if in != writer {
				readers = append(readers, in)
			}
		}
		if len(readers) == 0 {
			return nil, &apiError{http.StatusBadRequest, "InvalidDBClusterStateFault", fmt.Sprintf("Failover cannot be performed on DBCluster %s: it has no read replica to fail over to.", id)}
		}
		target := form.Get("TargetDBInstanceIdentifier")
		switch {
		case target == "":
			target = readers[0]
		case !slices.Contains(readers, target):
			return nil, &apiError{http.StatusBadRequest, "InvalidDBInstanceStateFault", fmt.Sprintf("Target instance %s is not a reader of DBCluster %s.", target, id)}
		}
		c.target, c.steps = target, FailoverSteps
		return []x{f.clusterXML(c)}, nil
	case "DescribeDBClusterSnapshots":
		id := form.Get("DBClusterIdentifier")
		var items []x
		for _, s := range f.snapshots {
			if id != "" && s.cluster != id {
				continue
			}
			items = append(items, el("", tx("DBClusterSnapshotIdentifier", s.id), tx("DBClusterIdentifier", s.cluster),
				tx("DBClusterSnapshotArn", fmt.Sprintf("arn:aws:rds:%s:%s:cluster-snapshot:%s", f.Region, f.Account, s.id)),
				tx("SnapshotCreateTime", ts(s.created)), tx("SnapshotType", "manual"), tx("Status", "available"), tx("Engine", "aurora-postgresql")))
		}
		return []x{members("DBClusterSnapshots", "DBClusterSnapshot", items)}, nil
	}
	if result, aerr, ok := f.blueGreen(action, form); ok {
		return result, aerr
	}
	return f.rdsCatalog(action, form)
}
