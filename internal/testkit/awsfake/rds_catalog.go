package awsfake

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/bestpractice"
)

// The fake Region's catalog of aurora-postgresql: the engine versions it offers (with their
// valid upgrade targets and the default), each major's lifecycle (standard and Extended
// Support), and the instance classes orderable per version. It answers
// DescribeDBEngineVersions, DescribeDBMajorEngineVersions and DescribeOrderableDBInstanceOptions.

// RDSCatalog is what the fake Region offers. Tests change Fake.Catalog to take versions or
// classes away, as a Region that lags behind the calendar does.
type RDSCatalog struct {
	Versions []string // oldest first
	Default  string
	// Classes lists the orderable classes per version; a version not in the map offers
	// AllClasses.
	Classes    map[string][]string
	AllClasses []string
	// Majors gives each major's lifecycle, from the calendar.
	Majors []bestpractice.Major
}

// DefaultCatalog is a Region that offers the whole calendar and every class apgstack knows,
// plus db.serverless.
func DefaultCatalog() *RDSCatalog {
	return &RDSCatalog{
		Versions:   bestpractice.EngineVersions(),
		Default:    bestpractice.DefaultEngineVersion(),
		AllClasses: append(slices.Clone(apgstack.InstanceClasses), "db.serverless"),
		Majors:     slices.Clone(bestpractice.Calendar),
	}
}

func (c *RDSCatalog) classesOf(version string) []string {
	if cl, ok := c.Classes[version]; ok {
		return cl
	}
	return c.AllClasses
}

func majorOf(v string) string { m, _, _ := strings.Cut(v, "."); return m }

// upgradeTargets are the versions newer than v, as RDS lists them: later minors of the same
// major, and every version of a later major (a major version upgrade).
func (c *RDSCatalog) upgradeTargets(v string) []x {
	var out []x
	i := slices.Index(c.Versions, v)
	for _, t := range c.Versions[i+1:] {
		major := majorOf(t) != majorOf(v)
		out = append(out, el("", tx("Engine", "aurora-postgresql"), tx("EngineVersion", t),
			tx("AutoUpgrade", "false"), tx("IsMajorVersionUpgrade", strconv.FormatBool(major))))
	}
	return out
}

func (f *Fake) catalog() *RDSCatalog {
	if f.Catalog == nil {
		f.Catalog = DefaultCatalog()
	}
	return f.Catalog
}

func (f *Fake) rdsCatalog(action string, form url.Values) ([]x, *apiError) {
	cat := f.catalog()
	if e := form.Get("Engine"); e != "" && e != "aurora-postgresql" {
		return nil, &apiError{http.StatusBadRequest, "InvalidParameterValue", "awsfake: only aurora-postgresql is faked, not " + e}
	}
	switch action {
	case "DescribeDBEngineVersions":
		var items []x
		for _, v := range cat.Versions {
			if want := form.Get("EngineVersion"); want != "" && want != v {
				continue
			}
			if form.Get("DefaultOnly") == "true" && v != cat.Default {
				continue
			}
			items = append(items, el("", tx("Engine", "aurora-postgresql"), tx("EngineVersion", v),
				tx("MajorEngineVersion", majorOf(v)), tx("DBParameterGroupFamily", "aurora-postgresql"+majorOf(v)),
				tx("Status", "available"), members("ValidUpgradeTarget", "UpgradeTarget", cat.upgradeTargets(v))))
		}
		return []x{members("DBEngineVersions", "DBEngineVersion", items)}, nil
	case "DescribeDBMajorEngineVersions":
		var items []x
		for _, m := range cat.Majors {
			major := strconv.Itoa(m.Major)
			if want := form.Get("MajorEngineVersion"); want != "" && want != major {
				continue
			}
			items = append(items, el("", tx("Engine", "aurora-postgresql"), tx("MajorEngineVersion", major),
				members("SupportedEngineLifecycles", "SupportedEngineLifecycle", []x{
					el("", tx("LifecycleSupportName", "open-source-rds-standard-support"), tx("LifecycleSupportStartDate", ts(m.Released)), tx("LifecycleSupportEndDate", ts(m.EndOfStandardSupport))),
					el("", tx("LifecycleSupportName", "open-source-rds-extended-support"), tx("LifecycleSupportStartDate", ts(m.EndOfStandardSupport)), tx("LifecycleSupportEndDate", ts(m.EndOfExtendedSupport))),
				})))
		}
		return []x{members("DBMajorEngineVersions", "DBMajorEngineVersion", items)}, nil
	case "DescribeOrderableDBInstanceOptions":
		var items []x
		for _, v := range cat.Versions {
			if want := form.Get("EngineVersion"); want != "" && want != v {
				continue
			}
			for _, cl := range cat.classesOf(v) {
				if want := form.Get("DBInstanceClass"); want != "" && want != cl {
					continue
				}
				items = append(items, el("", tx("Engine", "aurora-postgresql"), tx("EngineVersion", v), tx("DBInstanceClass", cl),
					tx("StorageType", "aurora"), tx("SupportsClusters", "true"), tx("SupportsPerformanceInsights", "true"),
					tx("SupportsEnhancedMonitoring", "true"), tx("SupportsIAMDatabaseAuthentication", "true")))
			}
		}
		return []x{members("OrderableDBInstanceOptions", "OrderableDBInstanceOption", items)}, nil
	}
	return nil, &apiError{http.StatusBadRequest, "InvalidAction", fmt.Sprintf("awsfake: RDS action not faked: %s", action)}
}
