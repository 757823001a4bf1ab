package bestpractice

import (
	"fmt"
	"strings"
)

// StageTable is the per-stage table of the README, rendered from Stages so that the two cannot
// drift (a test compares them).
func StageTable() string {
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	rows := []struct {
		label string
		cell  func(name string, s StageSettings) string
	}{
		{"reader instance in a second AZ", func(_ string, s StageSettings) string { return yes(s.Reader) }},
		{"backup retention, days", func(_ string, s StageSettings) string { return fmt.Sprint(s.BackupRetentionDays) }},
		{"enhanced monitoring interval", func(_ string, s StageSettings) string {
			if s.MonitoringIntervalSeconds == 0 {
				return "off"
			}
			return fmt.Sprintf("%d s", s.MonitoringIntervalSeconds)
		}},
		{"Database Insights mode", func(_ string, s StageSettings) string { return s.DatabaseInsightsMode }},
		{"Performance Insights retention, days", func(_ string, s StageSettings) string { return fmt.Sprint(s.PerformanceInsightsRetentionDays) }},
		{"auto minor version upgrade", func(_ string, s StageSettings) string { return yes(s.AutoMinorVersionUpgrade) }},
		{"deletion protection", func(_ string, s StageSettings) string { return yes(s.DeletionProtection) }},
		{"AWS Backup plan", func(_ string, s StageSettings) string {
			if s.AWSBackup {
				return "yes"
			}
			return "opt-in"
		}},
		{"Serverless v2 may pause (minACU 0)", func(name string, _ StageSettings) string { return yes(AutoPauseAllowed(name)) }},
	}
	var b strings.Builder
	b.WriteString("| per stage | " + strings.Join(StageNames, " | ") + " |\n|---|" + strings.Repeat("---|", len(StageNames)) + "\n")
	for _, r := range rows {
		cells := make([]string, len(StageNames))
		for i, name := range StageNames {
			cells[i] = r.cell(name, Stage(name))
		}
		b.WriteString("| " + r.label + " | " + strings.Join(cells, " | ") + " |\n")
	}
	return b.String()
}
