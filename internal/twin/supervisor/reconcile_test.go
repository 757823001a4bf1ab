package supervisor

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/apgstack/apgstack/internal/twin/api"
)

// TestStartTrustsTheDataOverTheRecord: a supervisor killed right after promoting a reader, before
// recording it, leaves state.json naming the old writer. The next start reads the data (which
// directory is a standby, which timeline is later), makes the promoted instance the writer, the
// other its reader, loses no committed row, and says what it corrected.
func TestStartTrustsTheDataOverTheRecord(t *testing.T) {
	cfg := testConfig(t, "prod")
	dir := stateDir(t)
	tw := up(t, cfg, dir)
	c := mustConnect(t, tw, cfg.Database.Port)
	ctx := context.Background()
	if _, err := c.Exec(ctx, "CREATE TABLE kept (n int); INSERT INTO kept SELECT generate_series(1, 50)"); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	res, err := api.NewClient(Layout{Root: dir}.Socket()).Failover(ctx, "")
	if err != nil || res.NewWriter != secondInstance {
		t.Fatalf("switchover: %+v %v", res, err)
	}
	c = mustConnect(t, tw, cfg.Database.Port)
	if _, err := c.Exec(ctx, "INSERT INTO kept SELECT generate_series(51, 80)"); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	tw.down()

	// The record as a supervisor killed before saving the promotion left it.
	l := Layout{Root: dir}
	st, _, err := LoadState(l)
	if err != nil {
		t.Fatal(err)
	}
	for i := range st.Instances {
		st.Instances[i].Role = map[bool]string{true: api.RoleWriter, false: api.RoleReader}[st.Instances[i].Name == firstInstance]
	}
	data, _ := json.Marshal(st)
	if err := os.WriteFile(l.StateFile(), data, 0o644); err != nil {
		t.Fatal(err)
	}

	tw = up(t, cfg, dir)
	var writer string
	for _, in := range tw.status.Instances {
		if in.Role == api.RoleWriter {
			if writer != "" {
				t.Fatalf("two writers: %+v", tw.status.Instances)
			}
			writer = in.Name
		}
	}
	if writer != secondInstance {
		t.Fatalf("writer %q after the start, want %s (the promoted one): %+v", writer, secondInstance, tw.status.Instances)
	}
	c = mustConnect(t, tw, cfg.Database.Port)
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM kept").Scan(&n); err != nil || n != 80 {
		t.Fatalf("rows after the start: %d %v, want 80", n, err)
	}
	if !hasEvent(t, dir, "db-cluster", cfg.Database.StackName, "notification", "the data says "+secondInstance) {
		t.Errorf("no event saying which record was corrected: %+v", mustEvents(t, dir))
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		st, err := api.NewClient(Layout{Root: dir}.Socket()).Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ok := 0
		for _, in := range st.Instances {
			if in.State == api.StateRunning {
				ok++
			}
		}
		if ok == 2 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Errorf("the old writer is not running as a reader")
}
