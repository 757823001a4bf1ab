package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apgstack/apgstack/internal/aws/lambdazip"
)

func TestPackageCommandIsReproducible(t *testing.T) {
	var keys []string
	var zips [][]byte
	for range 2 {
		dir := t.TempDir()
		code, stdout, stderr := runBootstrapCLI(t, nil, "package", "--dir", dir)
		if code != ExitOK {
			t.Fatalf("package: exit %d: %s", code, stderr)
		}
		key := strings.TrimSpace(stdout)
		if !strings.HasPrefix(key, "apgstack/bootstrap-lambda-") || !strings.HasSuffix(key, ".zip") {
			t.Fatalf("printed key %q", key)
		}
		data, err := os.ReadFile(filepath.Join(dir, filepath.Base(key)))
		if err != nil {
			t.Fatalf("the zip the key names is missing: %v", err)
		}
		keys, zips = append(keys, key), append(zips, data)
	}
	if keys[0] != keys[1] || !bytes.Equal(zips[0], zips[1]) {
		t.Errorf("two runs differ: %s vs %s", keys[0], keys[1])
	}
	if !strings.HasPrefix(keys[0], strings.TrimSuffix(lambdazip.KeyFor(""), ".zip")) {
		t.Errorf("key %s does not follow lambdazip.KeyFor", keys[0])
	}
}
