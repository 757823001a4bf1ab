package bestpractice

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// today is the day the issue was worked on; tests pass "now" explicitly.
var today = day("2026-12-04")

func TestCalendarIsOrderedAndConsistent(t *testing.T) {
	for i, m := range Calendar {
		if len(m.Minors) == 0 {
			t.Fatalf("major %d has no minors", m.Major)
		}
		for _, v := range m.Minors {
			if !strings.HasPrefix(v, strconv.Itoa(m.Major)+".") {
				t.Errorf("minor %s listed under major %d", v, m.Major)
			}
		}
		if !m.Released.Before(m.EndOfStandardSupport) || !m.EndOfStandardSupport.Before(m.EndOfExtendedSupport) {
			t.Errorf("major %d: dates out of order", m.Major)
		}
		if i > 0 && Calendar[i-1].Major >= m.Major {
			t.Errorf("majors out of order at %d", m.Major)
		}
	}
	if got := EngineVersions(); got[0] != "13.20" || got[len(got)-1] != "17.7" {
		t.Errorf("EngineVersions %v", got)
	}
}

func TestDefaultEngineVersion(t *testing.T) {
	for _, c := range []struct {
		now  string
		want string
	}{
		{"2026-12-04", "17.7"},  // 17 has been out since May 2025
		{"2025-06-01", "16.11"}, // 17 out less than SettledMonths
		{"2029-03-01", "17.7"},
	} {
		if got := DefaultEngineVersionAt(day(c.now)); got != c.want {
			t.Errorf("default on %s: %s, want %s", c.now, got, c.want)
		}
	}
	if DefaultEngineVersion() != DefaultEngineVersionAt(CalendarRecorded()) {
		t.Error("DefaultEngineVersion must be the rule on the date of record")
	}
}

func TestVersionProblem(t *testing.T) {
	for _, c := range []struct {
		name, version, lifecycle string
		now                      time.Time
		want                     []string // substrings; none means allowed
	}{
		{"standard support", "17.7", ExtendedSupportDisabled, today, nil},
		{"13 refused with its date", "13.21", ExtendedSupportDisabled, today,
			[]string{"Aurora PostgreSQL 13", "end of standard support on 2026-02-28", "17.7", ExtendedSupport, "2029-02-28", "USD"}},
		{"13 with the opt-in", "13.21", ExtendedSupport, today, nil},
		{"13 past extended support", "13.21", ExtendedSupport, day("2029-03-01"), []string{"end of RDS Extended Support on 2029-02-28"}},
		{"14 in its last months is allowed", "14.20", ExtendedSupportDisabled, today, nil},
		{"unknown", "9.6.8", ExtendedSupportDisabled, today, []string{"one of 13.20"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := VersionProblem(c.version, c.lifecycle, "db.r7g.large", c.now)
			if len(c.want) == 0 {
				if got != "" {
					t.Fatalf("refused: %s", got)
				}
				return
			}
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("problem %q lacks %q", got, w)
				}
			}
		})
	}
}

func TestVersionWarning(t *testing.T) {
	for _, c := range []struct {
		name, version string
		now           time.Time
		want          []string
	}{
		{"14 within 6 months", "14.20", today, []string{"leaves standard support on 2027-02-28", "in 86 days", "apgstack upgrade --engine-version 17.7"}},
		{"14 seven months before", "14.20", day("2026-07-27"), nil},
		{"15 far from its end", "15.15", today, nil},
		{"13 under extended support", "13.23", today, []string{"left standard support on 2026-02-28", "paid", "USD 146 a month"}},
		{"unknown says nothing", "9.6", today, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := VersionWarning(c.version, ExtendedSupport, "db.r7g.large", c.now)
			if len(c.want) == 0 && got != "" {
				t.Fatalf("unexpected warning %q", got)
			}
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("warning %q lacks %q", got, w)
				}
			}
		})
	}
}

func TestVCPUs(t *testing.T) {
	for class, want := range map[string]int{"db.t4g.medium": 2, "db.r7g.large": 2, "db.r7g.xlarge": 4, "db.r7g.16xlarge": 64, "db.serverless": 0} {
		if got := VCPUs(class); got != want {
			t.Errorf("%s: %d vCPUs, want %d", class, got, want)
		}
	}
	if c := ExtendedSupportCost(ServerlessClass); !strings.Contains(c, "ACU-hour") {
		t.Errorf("serverless Extended Support cost %q", c)
	}
	if !slices.Equal(StandardVersions(today), []string{"14.20", "15.15", "16.11", "17.7"}) {
		t.Errorf("standard versions %v", StandardVersions(today))
	}
}
