package backup

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestTakeReportsWhatWasTaken asks for an incremental backup of a stanza with no backup yet:
// pgBackRest takes a full one, and the set returned says full (type, label, Promoted). The
// backups after it are what was asked for.
func TestTakeReportsWhatWasTaken(t *testing.T) {
	ctx := context.Background()
	dir := baseDir(t)
	src := newInstance(t, dir, "src")
	if err := src.InitDB(ctx); err != nil {
		t.Fatal(err)
	}
	repo, err := New(Config{Dir: filepath.Join(dir, "backup"), Stanza: "apgstack-take", DataDir: src.DataDir(),
		SocketDir: src.SocketDir(), Port: src.Port, RetentionDays: 7}, src.Acct, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Setup(); err != nil {
		t.Fatal(err)
	}
	configure(t, src, repo.ArchiveCommand())
	start(t, src)
	if err := repo.StanzaCreate(ctx); err != nil {
		t.Fatal(err)
	}

	sqlExec(t, src, "CREATE TABLE t (i int)")
	var labels []string
	for i, step := range []struct {
		asked, want, labelSuffix string
		promoted                 bool
	}{
		{Incr, Full, "F", true}, // no full backup to build on: pgBackRest promotes it
		{Incr, Incr, "I", false},
		{Diff, Diff, "D", false},
		{Full, Full, "F", false},
	} {
		sqlExec(t, src, "INSERT INTO t VALUES ($1)", i) // something for each backup to hold
		set, err := repo.Take(ctx, step.asked, map[string]string{"apgstack": "test"})
		if err != nil {
			t.Fatalf("backup %d (%s): %v", i, step.asked, err)
		}
		if set.Type != step.want || !strings.HasSuffix(set.Label, step.labelSuffix) || set.Promoted(step.asked) != step.promoted {
			t.Errorf("backup %d: asked %s, got type %s label %s promoted %v; want %s, a label ending in %s, promoted %v",
				i, step.asked, set.Type, set.Label, set.Promoted(step.asked), step.want, step.labelSuffix, step.promoted)
		}
		for _, l := range labels {
			if set.Label == l {
				t.Errorf("backup %d: returned %s, an earlier backup", i, l)
			}
		}
		labels = append(labels, set.Label)
		if set.Annotations["apgstack"] != "test" {
			t.Errorf("backup %d: annotations %v", i, set.Annotations)
		}
	}
}
