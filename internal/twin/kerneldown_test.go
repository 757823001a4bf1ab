package twin

import (
	"context"
	"testing"

	"github.com/apgstack/apgstack/internal/twin/endpoint"
)

// TestDownRemovesStaleKernelTable: a supervisor that died leaves its endpoints' nftables table
// serving; down, with no supervisor to ask, removes it (and only it).
func TestDownRemovesStaleKernelTable(t *testing.T) {
	ctx := context.Background()
	dir, other := t.TempDir(), t.TempDir()
	k := endpoint.Kernel{Table: endpoint.TableName(dir)}
	if why := k.KernelUnavailable(ctx); why != "" {
		t.Skipf("kernel path unavailable: %s", why)
	}
	ko := endpoint.Kernel{Table: endpoint.TableName(other)}
	t.Cleanup(func() { _ = k.Remove(ctx); _ = ko.Remove(ctx) })
	for _, x := range []endpoint.Kernel{k, ko} {
		if err := x.Apply(ctx, []endpoint.Route{{Port: 1, Targets: []int{2}}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Down(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if ok, err := k.Exists(ctx); err != nil || ok {
		t.Errorf("own table after down = %v, %v; want gone", ok, err)
	}
	if ok, err := ko.Exists(ctx); err != nil || !ok {
		t.Errorf("another twin's table after down = %v, %v; want kept", ok, err)
	}
}
