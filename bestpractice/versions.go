package bestpractice

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The Aurora PostgreSQL versions apgstack offers, with each major's support dates, as AWS's
// release calendar states them:
//
//	"Aurora PostgreSQL release calendar for major versions" and "... for minor versions",
//	https://docs.aws.amazon.com/AmazonRDS/latest/AuroraPostgreSQLReleaseNotes/aurorapostgresql-release-calendar.html
//	(minor versions as listed on "Extension versions for Amazon Aurora PostgreSQL",
//	https://docs.aws.amazon.com/AmazonRDS/latest/AuroraPostgreSQLReleaseNotes/AuroraPostgreSQL.Extensions.html)
//
// Date of record: CalendarRecorded. The end-of-standard-support and end-of-Extended-Support
// dates are the calendar's; Released (the first Aurora release of a major, used only to decide
// when a new major becomes the default) is to the nearest week. The allowed versions, the
// default and every support warning are derived from this one table; refresh it from the
// calendar (and check a Region with `apgstack versions --live`, which asks
// DescribeDBEngineVersions and shows versions the table does not list yet, such as a new major).

// CalendarURL is the page the table is taken from.
const CalendarURL = "https://docs.aws.amazon.com/AmazonRDS/latest/AuroraPostgreSQLReleaseNotes/aurorapostgresql-release-calendar.html"

// calendarRecorded is the day the table was last checked against the calendar.
//
// Check of 2026-12-04: the minors of 17 (17.4 to 17.7) agree with the extension versions page.
// That page's translated editions already list an "Aurora PostgreSQL 18" section, but neither an
// 18 minor nor 18's calendar dates (release, end of standard support, end of Extended Support)
// could be read from the sources at hand, so 18 is not offered yet: add its row with the
// calendar's dates, and `apgstack versions --live` shows it meanwhile.
const calendarRecorded = "2026-12-04"

// CalendarRecorded is the date of record of the table: the default engine version is the one
// the rule picks on that day, so that a build gives the same templates whatever the clock says.
func CalendarRecorded() time.Time { return day(calendarRecorded) }

// Major is one Aurora PostgreSQL major version.
type Major struct {
	Major  int
	Minors []string // oldest first
	// Released is when Aurora made the major generally available.
	Released time.Time
	// EndOfStandardSupport is the "Aurora end of standard support" date; after it a cluster
	// runs only under paid RDS Extended Support, until EndOfExtendedSupport.
	EndOfStandardSupport time.Time
	EndOfExtendedSupport time.Time
}

// Calendar lists the majors apgstack offers, oldest first. 13 stays listed, past its end of
// standard support, so that a 13.x configuration is refused with its date (or runs under
// Extended Support when the user opts in) rather than as an unknown version.
var Calendar = []Major{
	{Major: 13, Minors: []string{"13.20", "13.21", "13.22", "13.23"},
		Released: day("2021-08-26"), EndOfStandardSupport: day("2026-02-28"), EndOfExtendedSupport: day("2029-02-28")},
	{Major: 14, Minors: []string{"14.17", "14.18", "14.19", "14.20"},
		Released: day("2022-06-21"), EndOfStandardSupport: day("2027-02-28"), EndOfExtendedSupport: day("2030-02-28")},
	{Major: 15, Minors: []string{"15.12", "15.13", "15.14", "15.15"},
		Released: day("2023-07-27"), EndOfStandardSupport: day("2028-02-29"), EndOfExtendedSupport: day("2031-02-28")},
	{Major: 16, Minors: []string{"16.8", "16.9", "16.10", "16.11"},
		Released: day("2024-01-31"), EndOfStandardSupport: day("2029-02-28"), EndOfExtendedSupport: day("2032-02-29")},
	{Major: 17, Minors: []string{"17.4", "17.5", "17.6", "17.7"},
		Released: day("2025-05-08"), EndOfStandardSupport: day("2030-02-28"), EndOfExtendedSupport: day("2033-02-28")},
}

// Time spans of the version rules.
const (
	// SupportWarningMonths: a major within this many months of its end of standard support
	// warns, time enough to test and run a major upgrade.
	SupportWarningMonths = 6
	// SettledMonths: a major becomes the default once it has been out this long (its early
	// minors have had their fixes and the extensions have caught up).
	SettledMonths = 6
)

// Lifecycle support values (the cluster's EngineLifecycleSupport).
const (
	ExtendedSupportDisabled = "open-source-rds-extended-support-disabled"
	ExtendedSupport         = "open-source-rds-extended-support"
)

// EngineVersions lists every minor of the calendar, oldest first.
func EngineVersions() []string {
	var out []string
	for _, m := range Calendar {
		out = append(out, m.Minors...)
	}
	return out
}

// MajorOf returns the calendar entry of a version ("16.9" -> 16) and whether the version is in
// the calendar.
func MajorOf(version string) (Major, bool) {
	for _, m := range Calendar {
		for _, v := range m.Minors {
			if v == version {
				return m, true
			}
		}
	}
	return Major{}, false
}

// Newest is the major's newest minor.
func (m Major) Newest() string { return m.Minors[len(m.Minors)-1] }

// InStandardSupport reports whether the major is in standard support on day now.
func (m Major) InStandardSupport(now time.Time) bool { return now.Before(m.EndOfStandardSupport) }

// DefaultEngineVersionAt is the newest minor of the newest major that has been out for
// SettledMonths and is in standard support on day now.
func DefaultEngineVersionAt(now time.Time) string {
	for i := len(Calendar) - 1; i >= 0; i-- {
		m := Calendar[i]
		if !m.Released.AddDate(0, SettledMonths, 0).After(now) && m.InStandardSupport(now) {
			return m.Newest()
		}
	}
	return Calendar[len(Calendar)-1].Newest()
}

// DefaultEngineVersion is the default on the calendar's date of record.
func DefaultEngineVersion() string { return DefaultEngineVersionAt(CalendarRecorded()) }

// StandardVersions lists the newest minor of every major in standard support on day now.
func StandardVersions(now time.Time) []string {
	var out []string
	for _, m := range Calendar {
		if m.InStandardSupport(now) {
			out = append(out, m.Newest())
		}
	}
	return out
}

// VersionProblem says why a version may not be deployed on day now with the given lifecycle
// support, or "" when it may. A version past its end of standard support needs the Extended
// Support opt-in, and then the cost is named; past the end of Extended Support nothing runs it.
func VersionProblem(version, lifecycle, instanceClass string, now time.Time) string {
	m, ok := MajorOf(version)
	if !ok {
		return fmt.Sprintf("one of %s", strings.Join(EngineVersions(), ", "))
	}
	alternatives := fmt.Sprintf("choose a version in standard support (%s; the default is %s)",
		strings.Join(StandardVersions(now), ", "), DefaultEngineVersionAt(now))
	switch {
	case !now.Before(m.EndOfExtendedSupport):
		return fmt.Sprintf("Aurora PostgreSQL %d reached the end of RDS Extended Support on %s: %s",
			m.Major, date(m.EndOfExtendedSupport), alternatives)
	case !m.InStandardSupport(now) && lifecycle != ExtendedSupport:
		return fmt.Sprintf("Aurora PostgreSQL %d reached the end of standard support on %s: %s, or set database.engineLifecycleSupport to %s to pay for RDS Extended Support until %s (%s)",
			m.Major, date(m.EndOfStandardSupport), alternatives, ExtendedSupport, date(m.EndOfExtendedSupport), ExtendedSupportCost(instanceClass))
	}
	return ""
}

// VersionWarning is what validate, explain, up and the twin show about a version on day now,
// or "" when there is nothing to say: a major within SupportWarningMonths of its end of
// standard support, or a major running (paid) under Extended Support. A version that
// VersionProblem refuses does not warn: the refusal says it all.
func VersionWarning(version, lifecycle, instanceClass string, now time.Time) string {
	m, ok := MajorOf(version)
	if !ok {
		return ""
	}
	target := DefaultEngineVersionAt(now)
	switch {
	case !m.InStandardSupport(now) && now.Before(m.EndOfExtendedSupport) && lifecycle == ExtendedSupport:
		return fmt.Sprintf("Aurora PostgreSQL %d left standard support on %s and runs under paid RDS Extended Support until %s (%s): upgrade with `apgstack upgrade --engine-version %s`",
			m.Major, date(m.EndOfStandardSupport), date(m.EndOfExtendedSupport), ExtendedSupportCost(instanceClass), target)
	case m.InStandardSupport(now) && !now.Before(m.EndOfStandardSupport.AddDate(0, -SupportWarningMonths, 0)):
		days := int(m.EndOfStandardSupport.Sub(now).Hours() / 24)
		return fmt.Sprintf("Aurora PostgreSQL %d leaves standard support on %s (in %d days); after that RDS Extended Support is paid (%s) or the cluster is upgraded for you: upgrade with `apgstack upgrade --engine-version %s`",
			m.Major, date(m.EndOfStandardSupport), days, ExtendedSupportCost(instanceClass), target)
	}
	return ""
}

// RDS Extended Support is charged per vCPU-hour of every instance (per ACU-hour on Serverless
// v2); the rates are those of the Aurora pricing page for us-east-1, other Regions differ.
const (
	ExtendedSupportPricingURL   = "https://aws.amazon.com/rds/aurora/pricing/"
	ExtendedSupportUSDPerVCPUHr = 0.10 // years 1 and 2 after the end of standard support
	extendedSupportYear3Factor  = 2    // year 3 costs twice as much
	hoursPerMonth               = 730
)

// ExtendedSupportCost names what Extended Support costs for one instance of a class, in words.
func ExtendedSupportCost(instanceClass string) string {
	base := fmt.Sprintf("USD %.2f per vCPU-hour in years 1-2 and USD %.2f in year 3, us-east-1, per instance, %s",
		ExtendedSupportUSDPerVCPUHr, ExtendedSupportUSDPerVCPUHr*extendedSupportYear3Factor, ExtendedSupportPricingURL)
	if instanceClass == ServerlessClass {
		return "charged per ACU-hour on Serverless v2, " + ExtendedSupportPricingURL
	}
	n := VCPUs(instanceClass)
	if n == 0 {
		return base
	}
	return fmt.Sprintf("%s: about USD %.0f a month for each %s instance (%d vCPUs)",
		base, float64(n)*ExtendedSupportUSDPerVCPUHr*hoursPerMonth, instanceClass, n)
}

// VCPUs is the vCPU count of a db.<family>.<size> class (0 when the size says nothing, as for
// db.serverless): medium and large have 2, xlarge 4, Nxlarge 4·N.
func VCPUs(instanceClass string) int {
	parts := strings.Split(instanceClass, ".")
	if len(parts) != 3 {
		return 0
	}
	switch size := parts[2]; {
	case size == "medium" || size == "large":
		return 2
	case size == "xlarge":
		return 4
	case strings.HasSuffix(size, "xlarge"):
		n, err := strconv.Atoi(strings.TrimSuffix(size, "xlarge"))
		if err != nil {
			return 0
		}
		return 4 * n
	}
	return 0
}

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic("bestpractice: bad date " + s)
	}
	return t
}

func date(t time.Time) string { return t.Format(time.DateOnly) }

// SupportPhase names where a major stands on day now: "standard", "ending" (within
// SupportWarningMonths of its end of standard support), "extended" (paid RDS Extended Support
// only) or "ended".
func SupportPhase(m Major, now time.Time) string {
	switch {
	case !now.Before(m.EndOfExtendedSupport):
		return "ended"
	case !m.InStandardSupport(now):
		return "extended"
	case !now.Before(m.EndOfStandardSupport.AddDate(0, -SupportWarningMonths, 0)):
		return "ending"
	}
	return "standard"
}
