package apgstack

import (
	"slices"
	"testing"
)

func TestDiffNamesEachChangedField(t *testing.T) {
	old := Default()
	for _, tc := range []struct {
		name string
		set  map[string]string
		want []string
	}{
		{"none", nil, nil},
		{"port", map[string]string{"database.port": "6500"}, []string{"database.port 5432 -> 6500"}},
		{"stage and map", map[string]string{"environment.stage": "prod", "target.local.alarmThresholds.CPUUtilization": "50"},
			[]string{"environment.stage dev -> prod", `target.local.alarmThresholds "" -> CPUUtilization=50`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Default()
			for p, v := range tc.set {
				if err := cfg.Set(p, v); err != nil {
					t.Fatal(err)
				}
			}
			var got []string
			for _, c := range Diff(old, cfg) {
				got = append(got, c.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Diff = %q, want %q", got, tc.want)
			}
		})
	}
}
