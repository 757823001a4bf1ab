package supervisor

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/endpoint"
	"github.com/apgstack/apgstack/internal/twin/instance"
)

// testTopology is a supervisor with only its topology loop: two instances whose servers were
// never started (they do not run), instance1 the writer; saved receives what would be written
// to state.json, and save's error is failSave's.
type testTopology struct {
	s        *Supervisor
	mu       sync.Mutex
	saved    []State
	failSave error
}

func newTestTopology(t *testing.T) *testTopology {
	tt := &testTopology{}
	tt.s = &Supervisor{topo: newTopology(topology{phase: api.PhaseReady}, func(st State) error {
		tt.mu.Lock()
		defer tt.mu.Unlock()
		if tt.failSave != nil {
			return tt.failSave
		}
		tt.saved = append(tt.saved, st)
		return nil
	})}
	t.Cleanup(tt.s.topo.close)
	if err := tt.s.recordInstances([]InstanceState{{Name: "instance1", Role: api.RoleWriter, Port: 1001}, {Name: "instance2", Role: api.RoleReader, Port: 1002}}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"instance1", "instance2"} {
		tt.s.addInstance(&instance.Instance{Name: name})
	}
	return tt
}

func (tt *testTopology) setFailSave(err error) {
	tt.mu.Lock()
	tt.failSave = err
	tt.mu.Unlock()
}

// TestTopologyOneOwner sends commands from many goroutines at once, as the monitor, reader
// restarts, a failover and status do: the loop applies them one at a time, so an exited server
// is marked (and reported) once, its restart is claimed once, a failover's condition is never
// overwritten by the monitor, and a published snapshot never changes under its reader.
func TestTopologyOneOwner(t *testing.T) {
	tt := newTestTopology(t)
	s := tt.s
	before := s.topo.now()

	s.setCondition("instance1", condition{kind: condFailingOver})
	var wg sync.WaitGroup
	exited := make(chan string, 100)
	claims := make(chan string, 100)
	for range 50 {
		wg.Go(func() {
			for _, in := range s.observeInstances() {
				exited <- in.Name
			}
		})
		wg.Go(func() {
			if s.claimExitedReader("instance2") {
				claims <- "instance2"
			}
		})
		wg.Go(func() { _ = s.topo.now().cond("instance2").message() })
	}
	wg.Wait()
	close(exited)
	close(claims)
	if got := collect(exited); !reflect.DeepEqual(got, []string{"instance2"}) {
		t.Errorf("marked exited: %v, want instance2 once (instance1 is failing over)", got)
	}
	if got := collect(claims); len(got) > 1 {
		t.Errorf("the exited reader's restart was claimed %d times, want at most once", len(got))
	}
	now := s.topo.now()
	if c := now.cond("instance1"); c.kind != condFailingOver || c.message() != "failing over" {
		t.Errorf("instance1: %+v %q", c, c.message())
	}
	if c := now.cond("instance2"); c.kind != condExited && c.kind != condRestarting {
		t.Errorf("instance2: %+v", c)
	}
	if len(before.conds) != 0 || before.state.Instances[0].Role != api.RoleWriter {
		t.Errorf("an earlier snapshot changed: %+v", before)
	}

	// A restart that failed puts the reader back to exited, to be claimed again.
	s.releaseExitedReader("instance2")
	if !s.claimExitedReader("instance2") {
		t.Error("a released reader could not be claimed again")
	}
	if c := s.topo.now().cond("instance2"); !c.starting() {
		t.Errorf("a reader being restarted shows %q, want starting", c.message())
	}
	// A condition set by an operation is not the monitor's to change.
	s.setFailed("instance2", "restart failed: no space left")
	if got := s.observeInstances(); len(got) != 0 || s.claimExitedReader("instance2") {
		t.Errorf("a failed instance was taken for exited: %v", got)
	}
	if c := s.topo.now().cond("instance2"); c.kind != condFailed || c.message() != "restart failed: no space left" {
		t.Errorf("instance2 after setFailed: %+v", c)
	}
	s.clearCondition("instance2")
	if _, ok := s.topo.now().conds["instance2"]; ok {
		t.Error("instance2 still has a condition after clearCondition")
	}
	for _, c := range []condition{{kind: condRejoining, detail: "instance1"}, {kind: condRewinding, detail: "instance1"}} {
		if !c.starting() || !strings.Contains(c.message(), "instance1") {
			t.Errorf("%+v: starting %v, %q", c, c.starting(), c.message())
		}
	}
}

func collect(ch chan string) []string {
	var out []string
	for s := range ch {
		out = append(out, s)
	}
	return out
}

// TestTopologyRecords checks what state.json receives: a promotion is recorded (and degrades a
// synchronous cluster); a change that cannot be recorded is not made, except a promotion, which
// has happened and is published whatever the file; a synchronous-replication decision taken for
// a writer that has been replaced meanwhile is refused; pending reboots are taken once.
func TestTopologyRecords(t *testing.T) {
	tt := newTestTopology(t)
	s := tt.s

	if err := s.recordSync("instance1", SyncState{Standby: "instance2", InSync: []string{"instance2"}}, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.recordPromotion("instance2", true); err != nil {
		t.Fatal(err)
	}
	now := s.topo.now()
	if now.writer().Name != "instance2" || now.role("instance1") != api.RoleReader || !now.state.Sync.Degraded || len(now.state.Sync.InSync) != 0 {
		t.Errorf("after the promotion: %+v", now.state)
	}
	if last := tt.saved[len(tt.saved)-1]; last.Instances[1].Role != api.RoleWriter || !last.Sync.Degraded {
		t.Errorf("state.json after the promotion: %+v", last)
	}
	// The monitor decided on instance1 as the writer, before the promotion: stale.
	if err := s.recordSync("instance1", SyncState{Standby: "instance1", InSync: []string{"instance1"}}, 0); !errors.Is(err, errTopologyChanged) {
		t.Errorf("a stale sync decision: %v, want errTopologyChanged", err)
	}

	diskFull := errors.New("no space left on device")
	tt.setFailSave(diskFull)
	if err := s.recordSync("instance2", SyncState{Standby: "instance1"}, 0); !errors.Is(err, diskFull) {
		t.Errorf("recordSync with state.json unwritable: %v", err)
	}
	if now := s.topo.now(); now.state.Sync.Standby != "" || !now.state.Sync.Degraded {
		t.Errorf("an unrecorded sync change was made: %+v", now.state.Sync)
	}
	if err := s.recordPromotion("instance1", false); !errors.Is(err, diskFull) {
		t.Errorf("recordPromotion with state.json unwritable: %v", err)
	}
	if now := s.topo.now(); now.writer().Name != "instance1" {
		t.Errorf("a promotion that happened is not published when state.json is unwritable: writer %s", now.writer().Name)
	}
	tt.setFailSave(nil)

	if err := s.addPendingReboot([]string{"database.engineVersion 15.10 -> 15.12"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.takePendingReboot("instance2")
	if err != nil || len(got) != 1 {
		t.Fatalf("pending reboot of instance2: %v %v", got, err)
	}
	if again, _ := s.takePendingReboot("instance2"); again != nil {
		t.Errorf("pending reboot taken twice: %v", again)
	}
	if p := s.topo.now().state.PendingReboot; len(p["instance1"]) != 1 || p["instance2"] != nil {
		t.Errorf("pending reboots: %v", p)
	}
}

// TestTopologyLeadsEndpoints checks that the endpoints' backends follow the topology: the writer
// endpoint leads to the instance pointWriter names; the reader endpoint to the serving readers or,
// with none serving (here no server runs), to the writer.
func TestTopologyLeadsEndpoints(t *testing.T) {
	tt := newTestTopology(t)
	s := tt.s
	log := slog.New(slog.DiscardHandler)
	w, err := endpoint.ListenLoopback("writer", 0, log)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, err := endpoint.ListenLoopback("reader", 0, log)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s.useEndpoints(w, r)
	s.pointWriter("instance1")
	if got := w.Backends(); !reflect.DeepEqual(got, []string{addr(1001)}) {
		t.Errorf("writer endpoint: %v", got)
	}
	if got := r.Backends(); len(got) != 0 {
		t.Errorf("reader endpoint with nothing running: %v", got)
	}
	if err := s.recordPromotion("instance2", false); err != nil {
		t.Fatal(err)
	}
	if got := w.Backends(); !reflect.DeepEqual(got, []string{addr(1001)}) {
		t.Errorf("writer endpoint moved before pointWriter: %v", got)
	}
	s.pointWriter("instance2")
	if got := w.Backends(); !reflect.DeepEqual(got, []string{addr(1002)}) {
		t.Errorf("writer endpoint after pointWriter: %v", got)
	}
}

// topologyFields are the fields of a topology: only the commands in topology.go may assign them.
var topologyFields = func() map[string]bool {
	m := map[string]bool{}
	ty := reflect.TypeFor[topology]()
	for i := range ty.NumField() {
		m[ty.Field(i).Name] = true
	}
	return m
}()

// TestTopologyChangedOnlyByCommands reads the package's code: outside topology.go nothing assigns
// to a topology's fields or deletes from its maps, so every change goes through the loop.
func TestTopologyChangedOnlyByCommands(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if name == "topology.go" || strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			var targets []ast.Expr
			switch n := n.(type) {
			case *ast.AssignStmt:
				if n.Tok != token.DEFINE {
					targets = n.Lhs
				}
			case *ast.IncDecStmt:
				targets = []ast.Expr{n.X}
			case *ast.CallExpr:
				if id, ok := n.Fun.(*ast.Ident); ok && id.Name == "delete" && len(n.Args) > 0 {
					targets = n.Args[:1]
				}
			}
			for _, e := range targets {
				if field := topologyField(e); field != "" {
					t.Errorf("%s: assigns the topology's %s outside its loop's commands (topology.go)", fset.Position(e.Pos()), field)
				}
			}
			return true
		})
	}
}

// topologyField is the topology field an assignment's target reaches through, if any: a selector
// x.f with f a field of topology, where x is reached from topo.now() or a variable t.
func topologyField(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.IndexExpr:
			e = x.X
		case *ast.ParenExpr:
			e = x.X
		case *ast.StarExpr:
			e = x.X
		case *ast.SelectorExpr:
			if topologyFields[x.Sel.Name] && fromTopology(x.X) {
				return x.Sel.Name
			}
			e = x.X
		default:
			return ""
		}
	}
}

// fromTopology reports an expression that names a topology: a call of now() or a variable t.
func fromTopology(e ast.Expr) bool {
	switch x := e.(type) {
	case *ast.CallExpr:
		if sel, ok := x.Fun.(*ast.SelectorExpr); ok {
			return sel.Sel.Name == "now"
		}
	case *ast.Ident:
		return x.Name == "t"
	}
	return false
}
