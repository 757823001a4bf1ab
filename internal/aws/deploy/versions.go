package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/internal/aws/stacks"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
)

// The live check: what the Region offers for aurora-postgresql, asked of RDS, so that `up`
// refuses a version or class the Region does not have before CloudFormation fails twenty
// minutes into creating the cluster. `apgstack versions --live` prints the same answer.

const auroraEngine = "aurora-postgresql"

// RegionVersion is one engine version as the Region offers it.
type RegionVersion struct {
	Version string `json:"version"`
	Major   string `json:"major"`
	Default bool   `json:"default,omitempty"`
	Status  string `json:"status"`
	// MinorTargets and MajorTargets are the valid upgrade targets.
	MinorTargets []string `json:"minorUpgradeTargets,omitempty"`
	MajorTargets []string `json:"majorUpgradeTargets,omitempty"`
}

// RegionMajor is one major's lifecycle in the Region.
type RegionMajor struct {
	Major                string    `json:"major"`
	EndOfStandardSupport time.Time `json:"endOfStandardSupport,omitzero"`
	EndOfExtendedSupport time.Time `json:"endOfExtendedSupport,omitzero"`
}

// Offer is what a Region offers for aurora-postgresql.
type Offer struct {
	Region   string          `json:"region"`
	Default  string          `json:"default"`
	Versions []RegionVersion `json:"versions"`
	Majors   []RegionMajor   `json:"majors"`
	// Classes are the orderable instance classes of ClassesFor (when asked).
	ClassesFor string   `json:"classesFor,omitempty"`
	Classes    []string `json:"classes,omitempty"`
}

// Version returns the Region's entry for a version, or nil.
func (o *Offer) Version(v string) *RegionVersion {
	for i := range o.Versions {
		if o.Versions[i].Version == v {
			return &o.Versions[i]
		}
	}
	return nil
}

// LiveVersions asks the Region for its aurora-postgresql versions (DescribeDBEngineVersions),
// their majors' Extended Support dates (DescribeDBMajorEngineVersions) and, when version is
// not empty, the instance classes orderable for it (DescribeOrderableDBInstanceOptions).
func (d *Deployer) LiveVersions(ctx context.Context, version string) (*Offer, error) {
	o := &Offer{Region: d.Region}
	pv := rds.NewDescribeDBEngineVersionsPaginator(d.RDS, &rds.DescribeDBEngineVersionsInput{Engine: aws.String(auroraEngine)})
	for pv.HasMorePages() {
		page, err := pv.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe %s engine versions in %s: %w", auroraEngine, d.Region, err)
		}
		for _, v := range page.DBEngineVersions {
			rv := RegionVersion{Version: aws.ToString(v.EngineVersion), Major: aws.ToString(v.MajorEngineVersion), Status: aws.ToString(v.Status)}
			for _, t := range v.ValidUpgradeTarget {
				if aws.ToBool(t.IsMajorVersionUpgrade) {
					rv.MajorTargets = append(rv.MajorTargets, aws.ToString(t.EngineVersion))
				} else {
					rv.MinorTargets = append(rv.MinorTargets, aws.ToString(t.EngineVersion))
				}
			}
			o.Versions = append(o.Versions, rv)
		}
	}
	def, err := d.RDS.DescribeDBEngineVersions(ctx, &rds.DescribeDBEngineVersionsInput{Engine: aws.String(auroraEngine), DefaultOnly: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("describe the default %s version in %s: %w", auroraEngine, d.Region, err)
	}
	if len(def.DBEngineVersions) > 0 {
		o.Default = aws.ToString(def.DBEngineVersions[0].EngineVersion)
		if v := o.Version(o.Default); v != nil {
			v.Default = true
		}
	}
	pm := rds.NewDescribeDBMajorEngineVersionsPaginator(d.RDS, &rds.DescribeDBMajorEngineVersionsInput{Engine: aws.String(auroraEngine)})
	for pm.HasMorePages() {
		page, err := pm.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe %s major versions in %s: %w", auroraEngine, d.Region, err)
		}
		for _, m := range page.DBMajorEngineVersions {
			rm := RegionMajor{Major: aws.ToString(m.MajorEngineVersion)}
			for _, l := range m.SupportedEngineLifecycles {
				switch l.LifecycleSupportName {
				case rdstypes.LifecycleSupportNameOpenSourceRdsStandardSupport:
					rm.EndOfStandardSupport = aws.ToTime(l.LifecycleSupportEndDate)
				case rdstypes.LifecycleSupportNameOpenSourceRdsExtendedSupport:
					rm.EndOfExtendedSupport = aws.ToTime(l.LifecycleSupportEndDate)
				}
			}
			o.Majors = append(o.Majors, rm)
		}
	}
	if version != "" {
		if o.Classes, err = d.OrderableClasses(ctx, version); err != nil {
			return nil, err
		}
		o.ClassesFor = version
	}
	return o, nil
}

// OrderableClasses lists the instance classes the Region offers for an engine version.
func (d *Deployer) OrderableClasses(ctx context.Context, version string) ([]string, error) {
	var out []string
	p := rds.NewDescribeOrderableDBInstanceOptionsPaginator(d.RDS, &rds.DescribeOrderableDBInstanceOptionsInput{
		Engine: aws.String(auroraEngine), EngineVersion: aws.String(version)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe orderable %s instance classes for %s in %s: %w", auroraEngine, version, d.Region, err)
		}
		for _, o := range page.OrderableDBInstanceOptions {
			if c := aws.ToString(o.DBInstanceClass); !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// NotOfferedError is a configured version or class the Region does not offer (exit 2: the
// configuration must change). It names the alternatives.
type NotOfferedError struct {
	Field, Value, Region string
	Alternatives         []string
}

func (e *NotOfferedError) Error() string {
	return fmt.Sprintf("%s: %q is not offered for %s in %s; the Region offers: %s",
		e.Field, e.Value, auroraEngine, e.Region, strings.Join(e.Alternatives, ", "))
}

// CheckOffered refuses a database stack whose engine version or instance class the Region does
// not offer, with the alternatives. A check that cannot be made (no permission) is a warning
// on the view, not a refusal: CloudFormation still has the last word.
func (d *Deployer) CheckOffered(ctx context.Context, st *stacks.Stack) error {
	version, class := param(st, stacks.ParamEngineVersion), param(st, stacks.ParamInstanceClass)
	if version == "" {
		return nil
	}
	o, err := d.LiveVersions(ctx, version)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d.msg("warning: could not check what %s offers for %s: %s", d.Region, auroraEngine, short(err))
		return nil
	}
	if o.Version(version) == nil {
		return &NotOfferedError{Field: "database.engineVersion", Value: version, Region: d.Region, Alternatives: o.alternativesTo(version)}
	}
	if class != "" && !slices.Contains(o.Classes, class) {
		return &NotOfferedError{Field: "database.instanceClass", Value: class, Region: d.Region, Alternatives: o.Classes}
	}
	return nil
}

// alternativesTo lists the Region's versions of the same major first, then the newest minor of
// each other major, and says which one is the Region's default.
func (o *Offer) alternativesTo(version string) []string {
	major, _, _ := strings.Cut(version, ".")
	var same, newest []string
	last := map[string]string{}
	var majors []string
	for _, v := range o.Versions {
		if v.Major == major {
			same = append(same, v.Version)
			continue
		}
		if _, ok := last[v.Major]; !ok {
			majors = append(majors, v.Major)
		}
		last[v.Major] = v.Version
	}
	for _, m := range majors {
		newest = append(newest, last[m])
	}
	out := append(same, newest...)
	for i, v := range out {
		if v == o.Default {
			out[i] = v + " (the Region's default)"
		}
	}
	return out
}

// Row is one line of `apgstack versions`: a version from the calendar, and what the Region
// says of it when the check is live.
type Row struct {
	Version              string `json:"version"`
	EndOfStandardSupport string `json:"endOfStandardSupport"`
	EndOfExtendedSupport string `json:"endOfExtendedSupport"`
	// Support is "standard", "ending" (within the warning window), "extended" or "ended".
	Support string `json:"support"`
	// Region is "offered", "default" or "not offered" (empty offline).
	Region   string   `json:"region,omitempty"`
	Upgrades []string `json:"upgradeTargets,omitempty"`
}

// VersionRows is the table of `apgstack versions`: the calendar on day now, joined with the
// Region's offer when o is not nil; versions the Region offers that the calendar does not yet
// list are added at the end, so that a stale table shows.
func VersionRows(o *Offer, now time.Time) []Row {
	var rows []Row
	seen := map[string]bool{}
	for _, m := range bestpractice.Calendar {
		for _, v := range m.Minors {
			r := Row{Version: v, EndOfStandardSupport: m.EndOfStandardSupport.Format(time.DateOnly),
				EndOfExtendedSupport: m.EndOfExtendedSupport.Format(time.DateOnly), Support: bestpractice.SupportPhase(m, now)}
			if o != nil {
				r.Region = "not offered"
				if rv := o.Version(v); rv != nil {
					r.Region = "offered"
					if rv.Default {
						r.Region = "default"
					}
					r.Upgrades = append(append([]string{}, rv.MinorTargets...), rv.MajorTargets...)
				}
			}
			seen[v] = true
			rows = append(rows, r)
		}
	}
	if o != nil {
		for _, rv := range o.Versions {
			if !seen[rv.Version] {
				rows = append(rows, Row{Version: rv.Version, Support: "not in apgstack's calendar", Region: "offered"})
			}
		}
	}
	return rows
}

// IsNotOffered reports whether err is a version or class the Region does not offer.
func IsNotOffered(err error) bool {
	var e *NotOfferedError
	return errors.As(err, &e)
}
