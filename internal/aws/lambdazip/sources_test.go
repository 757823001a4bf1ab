package lambdazip

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func TestBuildVersion(t *testing.T) {
	for _, tc := range []struct {
		name    string
		info    *debug.BuildInfo
		ok      bool
		version string
		why     string
	}{
		{"go install at a version", &debug.BuildInfo{Main: debug.Module{Path: module, Version: "v1.4.0"}}, true, "v1.4.0", ""},
		{"pseudo-version", &debug.BuildInfo{Main: debug.Module{Path: module, Version: "v0.0.0-20261204101010-0123456789ab"}}, true, "v0.0.0-20261204101010-0123456789ab", ""},
		{"checkout build", &debug.BuildInfo{Main: debug.Module{Path: module, Version: "(devel)"}}, true, "", "checkout that is not here"},
		{"modified checkout", &debug.BuildInfo{Main: debug.Module{Path: module, Version: "v1.4.1-0.20261204-abc+dirty"}}, true, "", "modified checkout"},
		{"another module", &debug.BuildInfo{Main: debug.Module{Path: "example.com/other", Version: "v1.0.0"}}, true, "", "not built from"},
		{"no build information", nil, false, "", "no build information"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, why := buildVersion(tc.info, tc.ok)
			if v != tc.version || !strings.Contains(why, tc.why) {
				t.Errorf("buildVersion = %q, %q; want %q, %q", v, why, tc.version, tc.why)
			}
		})
	}
}

// TestBuildWithoutSourceSaysWhatToDo: outside a checkout, in a binary that embeds no zip and
// was built from a checkout (as this test is), Build says exactly what to do.
func TestBuildWithoutSourceSaysWhatToDo(t *testing.T) {
	t.Chdir(t.TempDir())
	_, err := Build(context.Background(), "", t.TempDir())
	if !errors.Is(err, ErrNoSource) {
		t.Fatalf("err = %v, want ErrNoSource", err)
	}
	for _, want := range []string{"git clone https://" + module, "release binary", "go install " + module + "/cmd/apgstack@latest", "checkout that is not here"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
}

// TestReleaseConfiguration: the release build runs mkrelease first and builds with the tag that
// embeds its zip.
func TestReleaseConfiguration(t *testing.T) {
	mod, err := FindModule(".")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(mod, ".goreleaser.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"go run ./internal/aws/lambdazip/mkrelease", "tags: [apgstack_release]", "main: ./cmd/apgstack"} {
		if !strings.Contains(string(b), want) {
			t.Errorf(".goreleaser.yaml does not hold %q", want)
		}
	}
}
