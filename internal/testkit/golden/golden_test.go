package golden

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAssertMatchesFile(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.MkdirAll("testdata", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", "x.golden"), []byte("a\nb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	Assert(t, "x.golden", []byte("a\nb\n"))
}

func TestDiffShowsChangedLines(t *testing.T) {
	d := Diff([]byte("one\ntwo\nthree\nfour\n"), []byte("one\ntwo\nTHREE\nfour\n"))
	for _, want := range []string{"@@ line 3", "- three", "+ THREE", "  two", "  four"} {
		if !strings.Contains(d, want) {
			t.Errorf("diff lacks %q:\n%s", want, d)
		}
	}
	if strings.Contains(d, "- four") || strings.Contains(d, "+ one") {
		t.Errorf("diff reports unchanged lines as changed:\n%s", d)
	}
}

func TestDiffAppended(t *testing.T) {
	d := Diff([]byte("a\n"), []byte("a\nb\n"))
	if !strings.Contains(d, "+ b") || strings.Contains(d, "- ") {
		t.Errorf("unexpected diff:\n%s", d)
	}
}
