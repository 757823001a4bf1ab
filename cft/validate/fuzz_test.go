package validate

import (
	"path/filepath"
	"testing"
)

// FuzzBytes: no input makes validation panic. `go test` runs the fixtures as seeds; run
// `go test -fuzz FuzzBytes ./validate` to search further.
func FuzzBytes(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.y*ml")
	files = append(files, "testdata/good.yaml")
	for _, file := range files {
		f.Add(readFixture(f, file))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		Bytes(data, "fuzz.yaml")
	})
}
