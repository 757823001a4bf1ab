package cli

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/internal/testkit/pgtest"
)

// devProject writes a dev configuration with endpoint ports free now into a temporary directory
// the server account can reach, and returns the state directory to use, the configuration and the
// flags that name both.
func devProject(t *testing.T) (dir string, cfg apgstack.Config, common []string) {
	t.Helper()
	root := pgtest.ReachableDir(t, "cli") // the server account must reach the state
	dir = filepath.Join(root, "state")
	var ports []string
	for len(ports) < 2 {
		p, err := freeLoopbackPort()
		if err != nil {
			t.Fatal(err)
		}
		if len(ports) == 0 || ports[0] != strconv.Itoa(p) {
			ports = append(ports, strconv.Itoa(p))
		}
	}
	path := filepath.Join(root, "apgstack.yaml")
	if code, _, stderr := run(t, nil, "init", "--config", path, "--set", "database.port="+ports[0], "--set", "target.local.readerPort="+ports[1]); code != ExitOK {
		t.Fatalf("init: %s", stderr)
	}
	cfg, err := apgstack.Load(path, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	return dir, cfg, []string{"--config", path, "--state-dir", dir}
}
