// Package golden compares test output with files under testdata/ and rewrites them when the
// test binary runs with -update:
//
//	go test ./stacks -run Network -update
//
// Golden files are reviewed like code: an -update run shows up in the diff of the commit.
package golden

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// update is registered on the default flag set, which `go test` parses for every test binary
// that imports this package.
var update = flag.Bool("update", false, "rewrite golden files under testdata/ with the current output")

// Updating reports whether the test binary runs with -update.
func Updating() bool { return *update }

// Path is the location of a golden file: name under the package's testdata directory.
func Path(name string) string { return filepath.Join("testdata", filepath.FromSlash(name)) }

// Assert fails the test when got differs from testdata/<name>; with -update it writes got there
// instead.
func Assert(t testing.TB, name string, got []byte) {
	t.Helper()
	path := Path(name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatalf("golden: %v", err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("golden: %v", err)
		}
		t.Logf("golden: wrote %s", path)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden: %v (run the test with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("golden: output differs from %s (run with -update to accept it after review):\n%s", path, Diff(want, got))
	}
}

// Diff describes the first difference between two texts by line, with a few lines of context;
// enough to see what changed without a diff library.
func Diff(want, got []byte) string {
	w := strings.Split(string(want), "\n")
	g := strings.Split(string(got), "\n")
	i := 0
	for i < len(w) && i < len(g) && w[i] == g[i] {
		i++
	}
	// Trailing lines that agree, so the report shows the changed region only.
	j := 0
	for j < len(w)-i && j < len(g)-i && w[len(w)-1-j] == g[len(g)-1-j] {
		j++
	}
	const context = 3
	var b strings.Builder
	start := max(0, i-context)
	fmt.Fprintf(&b, "@@ line %d (want %d lines, got %d) @@\n", i+1, len(w), len(g))
	for k := start; k < i; k++ {
		fmt.Fprintf(&b, "  %s\n", w[k])
	}
	const limit = 40
	for k, n := i, 0; k < len(w)-j; k, n = k+1, n+1 {
		if n == limit {
			fmt.Fprintf(&b, "- ... (%d more)\n", len(w)-j-k)
			break
		}
		fmt.Fprintf(&b, "- %s\n", w[k])
	}
	for k, n := i, 0; k < len(g)-j; k, n = k+1, n+1 {
		if n == limit {
			fmt.Fprintf(&b, "+ ... (%d more)\n", len(g)-j-k)
			break
		}
		fmt.Fprintf(&b, "+ %s\n", g[k])
	}
	for k := len(w) - j; k < len(w) && k < len(w)-j+context; k++ {
		fmt.Fprintf(&b, "  %s\n", w[k])
	}
	return b.String()
}
