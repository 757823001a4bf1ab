package stacks

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/apgstack/apgstack/bestpractice"
)

// TestDatabaseInsights: the cluster runs Database Insights in the stage's mode, with the
// cluster-level Performance Insights settings the mode needs, and every instance carries the
// same Performance Insights and enhanced monitoring settings.
func TestDatabaseInsights(t *testing.T) {
	for _, c := range dbCases {
		t.Run(c.name, func(t *testing.T) {
			e := explainDB(t, c)
			want := bestpractice.Stage(c.stage)
			cl := e.Resource(dbCluster).Properties
			if cl["DatabaseInsightsMode"] != want.DatabaseInsightsMode {
				t.Errorf("DatabaseInsightsMode %v, want %s", cl["DatabaseInsightsMode"], want.DatabaseInsightsMode)
			}
			if cl["PerformanceInsightsEnabled"] != true || cl["PerformanceInsightsKmsKeyId"] == nil {
				t.Errorf("cluster Performance Insights: %v %v", cl["PerformanceInsightsEnabled"], cl["PerformanceInsightsKmsKeyId"])
			}
			if want.DatabaseInsightsMode == bestpractice.InsightsAdvanced && str(cl["PerformanceInsightsRetentionPeriod"]) != fmt.Sprint(bestpractice.InsightsAdvancedRetentionDays) {
				t.Errorf("advanced mode needs %d days, got %v", bestpractice.InsightsAdvancedRetentionDays, cl["PerformanceInsightsRetentionPeriod"])
			}
			for _, in := range e.OfType("AWS::RDS::DBInstance") {
				p := in.Properties
				if str(p["PerformanceInsightsRetentionPeriod"]) != str(cl["PerformanceInsightsRetentionPeriod"]) {
					t.Errorf("%s retention %v, cluster %v", in.Name, p["PerformanceInsightsRetentionPeriod"], cl["PerformanceInsightsRetentionPeriod"])
				}
				if !reflect.DeepEqual(p["PerformanceInsightsKMSKeyId"], cl["PerformanceInsightsKmsKeyId"]) {
					t.Errorf("%s key %v, cluster %v", in.Name, p["PerformanceInsightsKMSKeyId"], cl["PerformanceInsightsKmsKeyId"])
				}
			}
		})
	}
	if bestpractice.Stage("prod").DatabaseInsightsMode != bestpractice.InsightsAdvanced {
		t.Error("prod runs advanced Database Insights")
	}
}
