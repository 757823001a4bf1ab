package awsfake

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"time"
)

// The fake's RDS: the clusters that stacks create, their deletion protection and the final
// snapshots left when a stack deletes them.

type cluster struct {
	id, endpoint, reader string
	protected            bool
}

type snapshot struct {
	id, cluster string
	created     time.Time
}

func (f *Fake) clusterXML(c *cluster) x {
	return el("DBCluster", tx("DBClusterIdentifier", c.id), tx("DBClusterArn", fmt.Sprintf("arn:aws:rds:%s:%s:cluster:%s", f.Region, f.Account, c.id)),
		tx("Status", "available"), tx("Engine", "aurora-postgresql"), tx("Endpoint", c.endpoint), tx("ReaderEndpoint", c.reader),
		tx("Port", "5432"), tx("DeletionProtection", fmt.Sprint(c.protected)))
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
	return nil, &apiError{http.StatusBadRequest, "InvalidAction", "awsfake: RDS action not faked: " + action}
}
