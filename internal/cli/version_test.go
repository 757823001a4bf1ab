package cli

import (
	"encoding/json"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionFromBuildInfo(t *testing.T) {
	platform := runtime.GOOS + "/" + runtime.GOARCH
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		want versionInfo
	}{
		{"no build info", nil, versionInfo{Version: unknown, Commit: unknown, Date: unknown, GoVersion: runtime.Version(), Platform: platform}},
		{"release build", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-12-01T09:30:00Z"},
			{Key: "vcs.modified", Value: "false"},
			{Key: "GOOS", Value: "darwin"}, {Key: "GOARCH", Value: "arm64"},
		}}, versionInfo{Version: "v1.4.0", Commit: "0123456789abcdef0123456789abcdef01234567", Date: "2026-12-01T09:30:00Z", GoVersion: "go1.26.8", Platform: "darwin/arm64"}},
		{"dirty work tree, no VCS time", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "true"},
		}}, versionInfo{Version: "(devel)", Commit: "abc", Modified: true, Date: unknown, GoVersion: "go1.26.8", Platform: platform}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := versionFrom(tt.bi); got != tt.want {
				t.Errorf("versionFrom:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
	short := versionFrom(tests[1].bi).short()
	if want := "v1.4.0 (commit 0123456789ab, date 2026-12-01T09:30:00Z, go1.26.8, darwin/arm64)"; short != want {
		t.Errorf("short: got %q, want %q", short, want)
	}
}

func TestVersionCommand(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want []string // substrings of stdout
	}{
		{"--version", []string{"--version"}, ExitOK, []string{"apgstack version ", runtime.Version()}},
		{"version", []string{"version"}, ExitOK, []string{"apgstack ", "commit:", "date:", "go:        " + runtime.Version(), "platform:"}},
		{"version -o text", []string{"version", "-o", "text"}, ExitOK, []string{"go:        " + runtime.Version()}},
		{"version takes no arguments", []string{"version", "extra"}, ExitUsage, nil},
		{"unknown output format", []string{"version", "-o", "yaml"}, ExitUsage, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(t, nil, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
		})
	}
}

func TestVersionJSONIsOneDocument(t *testing.T) {
	code, stdout, stderr := run(t, nil, "version", "-o", "json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	dec := json.NewDecoder(strings.NewReader(stdout))
	var got map[string]any
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	if dec.More() {
		t.Errorf("more than one JSON document:\n%s", stdout)
	}
	for _, k := range []string{"version", "commit", "modified", "date", "goVersion", "platform"} {
		if _, ok := got[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, stdout)
		}
	}
	if got["goVersion"] != runtime.Version() {
		t.Errorf("goVersion %v, want %s", got["goVersion"], runtime.Version())
	}
}
