package apgstack

import (
	"strings"
	"testing"
	"time"

	"github.com/apgstack/apgstack/bestpractice"
)

// onIssueDay is the day the version rules were written against; tests never read the clock.
var onIssueDay = time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)

// TestEngineVersionSupport: a version past its end of standard support is refused with the date,
// unless Extended Support is chosen (then its cost is named); a major near its end warns.
func TestEngineVersionSupport(t *testing.T) {
	for _, c := range []struct {
		name, version, lifecycle string
		refused                  []string
		warned                   []string
	}{
		{"13.x refused with its end-of-support date", "13.21", bestpractice.ExtendedSupportDisabled,
			[]string{"database.engineVersion", `"13.21"`, "end of standard support on 2026-02-28", "17.7"}, nil},
		{"13.x under Extended Support names the cost", "13.21", bestpractice.ExtendedSupport,
			nil, []string{"paid RDS Extended Support until 2029-02-28", "USD 0.10 per vCPU-hour"}},
		{"14 within six months warns", "14.20", bestpractice.ExtendedSupportDisabled,
			nil, []string{"leaves standard support on 2027-02-28"}},
		{"the default is quiet", DefaultEngineVersion, bestpractice.ExtendedSupportDisabled, nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := Default()
			cfg.Database.EngineVersion, cfg.Database.EngineLifecycleSupport = c.version, c.lifecycle
			err := cfg.ValidateAt(onIssueDay)
			if len(c.refused) == 0 && err != nil {
				t.Fatalf("refused: %v", err)
			}
			for _, w := range c.refused {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v lacks %q", err, w)
				}
			}
			warnings := strings.Join(cfg.Warnings(onIssueDay), "\n")
			if len(c.warned) == 0 && warnings != "" {
				t.Errorf("unexpected warnings: %s", warnings)
			}
			for _, w := range c.warned {
				if !strings.Contains(warnings, w) {
					t.Errorf("warnings %q lack %q", warnings, w)
				}
			}
		})
	}
	if DefaultEngineVersion != "17.7" {
		t.Errorf("default %s: the newest minor of the newest settled major on the date of record is 17.7", DefaultEngineVersion)
	}
}
