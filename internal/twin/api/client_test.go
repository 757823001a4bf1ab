package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apgstack/apgstack"
)

// backend records what each route asked for and answers with fixed values, so that a test can
// check both directions of every route.
type backend struct {
	shutdowns int
	asked     []string
}

func (b *backend) Status(context.Context) Status {
	return Status{Name: "db", Phase: PhaseReady}
}
func (b *backend) Events(context.Context) ([]Event, error) {
	return []Event{{Category: "notification", Message: "hello"}}, nil
}
func (b *backend) Shutdown(context.Context) error { b.shutdowns++; return nil }
func (b *backend) Failover(_ context.Context, target string) (Failover, error) {
	b.asked = append(b.asked, "failover "+target)
	if target == "writer" {
		return Failover{}, &OperationError{Code: http.StatusBadRequest, Message: `target "writer" is the writer already`}
	}
	return Failover{Kind: FailoverPromote, NewWriter: target, Planned: true}, nil
}
func (b *backend) RotateSecret(_ context.Context, role string) ([]Rotation, error) {
	b.asked = append(b.asked, "rotate "+role)
	return []Rotation{{Role: role, Username: "u"}}, nil
}
func (b *backend) Backups(context.Context) (BackupInfo, error) {
	return BackupInfo{Stanza: "db", Backups: []BackupSet{{Label: "F1", Type: BackupFull}}}, nil
}
func (b *backend) BackupNow(_ context.Context, typ string) (BackupInfo, error) {
	b.asked = append(b.asked, "backup "+typ)
	return BackupInfo{Stanza: "db", Backups: []BackupSet{{Label: "I1", Type: typ}}}, nil
}
func (b *backend) ArchiveNow(context.Context) error {
	b.asked = append(b.asked, "archive")
	return errors.New("archive-push failed")
}
func (b *backend) Snapshots(context.Context) ([]Snapshot, error) { return nil, nil }
func (b *backend) CreateSnapshot(_ context.Context, name, kind string) (Snapshot, error) {
	b.asked = append(b.asked, "snapshot "+name+" "+kind)
	return Snapshot{Name: name, Kind: kind}, nil
}
func (b *backend) Reconfigure(_ context.Context, cfg apgstack.Config) (ReconfigureResult, error) {
	b.asked = append(b.asked, "reconfigure "+cfg.Database.PgauditLog)
	return ReconfigureResult{Applied: []string{"database.pgauditLog ddl,role -> all"}}, nil
}
func (b *backend) Reboot(_ context.Context, instance string, failover bool) (RebootResult, error) {
	b.asked = append(b.asked, fmt.Sprintf("reboot %s %v", instance, failover))
	return RebootResult{Instance: instance}, nil
}
func (b *backend) Chaos(_ context.Context, req ChaosRequest) (ChaosResult, error) {
	b.asked = append(b.asked, fmt.Sprintf("chaos %s %s", req.Fault, req.For))
	return ChaosResult{Fault: req.Fault, For: req.For}, nil
}
func (b *backend) Metrics(context.Context) MetricsReport {
	return MetricsReport{Cluster: "db", Samples: []Sample{{Instance: "instance1", Values: map[string]float64{"CPUUtilization": 1}}}}
}

func TestRoundTripOverUnixSocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "run", "sock")
	if _, err := NewClient(sock).Status(context.Background()); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("status without supervisor: %v, want ErrNotRunning", err)
	}
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{sock: 0o600, filepath.Dir(sock): 0o700} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
	if _, err := Listen(sock); err == nil {
		t.Error("a second supervisor could listen on the same socket")
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &backend{}
	done := make(chan error)
	go func() { done <- Serve(ctx, ln, b) }()
	c := NewClient(sock)
	st, err := c.Status(ctx)
	if err != nil || st.Name != "db" || st.Phase != PhaseReady {
		t.Fatalf("status = %+v, %v", st, err)
	}
	ev, err := c.Events(ctx)
	if err != nil || len(ev) != 1 || ev[0].Message != "hello" {
		t.Fatalf("events = %+v, %v", ev, err)
	}
	// Every route, through its typed method: requests arrive as sent, answers come back whole,
	// and a refusal reads as the supervisor's message alone.
	if res, err := c.Failover(ctx, "instance2"); err != nil || res.NewWriter != "instance2" {
		t.Errorf("failover = %+v, %v", res, err)
	}
	var re *RemoteError
	if _, err := c.Failover(ctx, "writer"); !errors.As(err, &re) || !re.BadRequest() || err.Error() != `target "writer" is the writer already` {
		t.Errorf("refused failover: %v", err)
	}
	if res, err := c.RotateSecret(ctx, "rw"); err != nil || len(res) != 1 || res[0].Role != "rw" {
		t.Errorf("rotate = %+v, %v", res, err)
	}
	if info, err := c.Backups(ctx); err != nil || len(info.Backups) != 1 || info.Backups[0].Label != "F1" {
		t.Errorf("backups = %+v, %v", info, err)
	}
	if info, err := c.BackupNow(ctx, BackupIncr); err != nil || info.Backups[0].Type != BackupIncr {
		t.Errorf("backup = %+v, %v", info, err)
	}
	if _, err := c.BackupNow(ctx, "weekly"); !errors.As(err, &re) || re.Status != http.StatusBadRequest || !strings.Contains(err.Error(), "full, diff or incr") {
		t.Errorf("bad backup type: %v", err)
	}
	if err := c.ArchiveNow(ctx); !errors.As(err, &re) || re.Status != http.StatusInternalServerError || err.Error() != "archive-push failed" {
		t.Errorf("archive: %v", err)
	}
	if list, err := c.Snapshots(ctx); err != nil || list == nil || len(list) != 0 {
		t.Errorf("snapshots = %#v, %v", list, err)
	}
	if sn, err := c.CreateSnapshot(ctx, "before", ""); err != nil || sn.Kind != "manual" {
		t.Errorf("snapshot = %+v, %v", sn, err)
	}
	if _, err := c.CreateSnapshot(ctx, "bad name!", ""); !errors.As(err, &re) || re.Status != http.StatusBadRequest {
		t.Errorf("bad snapshot name: %v", err)
	}
	if rep, err := c.Metrics(ctx); err != nil || len(rep.Samples) != 1 || rep.Samples[0].Values["CPUUtilization"] != 1 {
		t.Errorf("metrics = %+v, %v", rep, err)
	}
	cfg := apgstack.Default()
	cfg.Database.PgauditLog = "all"
	if res, err := c.Reconfigure(ctx, cfg); err != nil || len(res.Applied) != 1 {
		t.Errorf("reconfigure = %+v, %v", res, err)
	}
	if res, err := c.Reboot(ctx, "instance1", true); err != nil || res.Instance != "instance1" {
		t.Errorf("reboot = %+v, %v", res, err)
	}
	if res, err := c.Chaos(ctx, ChaosRequest{Fault: ChaosHangWriter, For: time.Second}); err != nil || res.Fault != ChaosHangWriter {
		t.Errorf("chaos = %+v, %v", res, err)
	}
	// A bad request is refused before the backend: the fault and the allowed ones are named.
	if _, err := c.Chaos(ctx, ChaosRequest{Fault: "melt"}); !errors.As(err, &re) || !re.BadRequest() || !strings.Contains(err.Error(), `"melt": one of crash-writer`) {
		t.Errorf("chaos melt = %v, want a 400 naming the fault and the allowed ones", err)
	}
	want := []string{"failover instance2", "failover writer", "rotate rw", "backup incr", "archive", "snapshot before manual", "reconfigure all", "reboot instance1 true", "chaos hang-writer 1s"}
	if !slices.Equal(b.asked, want) {
		t.Errorf("the backend was asked %q, want %q", b.asked, want)
	}
	if err := c.Shutdown(ctx); err != nil || b.shutdowns != 1 {
		t.Fatalf("shutdown: %v (%d)", err, b.shutdowns)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestChaosRequestCheck: each refusal names the field, the value and what is allowed.
func TestChaosRequestCheck(t *testing.T) {
	for _, tc := range []struct {
		req  ChaosRequest
		want string // "" is valid
	}{
		{ChaosRequest{Fault: ChaosCrashWriter}, ""},
		{ChaosRequest{Fault: ChaosStallReplication, For: 30 * time.Second, Instance: "instance2"}, ""},
		{ChaosRequest{Fault: ChaosHangWriter}, "for 0s: a duration above 0 and at most 1h0m0s allowed"},
		{ChaosRequest{Fault: ChaosHangWriter, For: 2 * time.Hour}, "for 2h0m0s: a duration above 0"},
		{ChaosRequest{Fault: ChaosDropConnections, For: time.Second}, "for 1s: this fault takes no duration"},
		{ChaosRequest{Fault: ChaosCrashWriter, Instance: "instance2"}, `instance "instance2": only crash-reader and stall-replication`},
		{ChaosRequest{Fault: ""}, `chaos fault "": one of crash-writer, hang-writer`},
	} {
		err := tc.req.Check()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.req, err, tc.want)
		}
	}
}
