package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apgstack/apgstack/cft"
	"github.com/apgstack/apgstack/internal/aws/stacks"
)

// synthConfig writes a configuration file with a few non-default values.
func synthConfig(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "apgstack.yaml")
	if code, _, stderr := run(t, nil, "init", "--config", path, "--set", "network.classB=17", "--set", "network.flowLogsRetentionInDays=30"); code != ExitOK {
		t.Fatalf("init: exit %d: %s", code, stderr)
	}
	return path
}

func readSynthDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

func TestSynthTwiceGivesIdenticalBytes(t *testing.T) {
	cfg := synthConfig(t)
	dir := filepath.Join(t.TempDir(), "out")
	code, stdout, stderr := run(t, nil, "synth", "--config", cfg, "-d", dir)
	if code != ExitOK {
		t.Fatalf("synth: exit %d: %s", code, stderr)
	}
	first := readSynthDir(t, dir)

	// The printed paths are exactly the files written: a template and a parameters file per stack.
	var want []string
	for _, k := range stacks.Available() {
		want = append(want, filepath.Join(dir, k+".yaml"), filepath.Join(dir, k+".parameters.json"))
	}
	if got := strings.Fields(stdout); !slices.Equal(got, want) {
		t.Errorf("stdout lists %v, want %v", got, want)
	}
	if len(first) != len(want) {
		t.Errorf("directory holds %d files (%v), want %d: no temporary files may be left", len(first), synthKeys(first), len(want))
	}

	// Again into the same directory, and into a fresh one: the same bytes.
	for _, d := range []string{dir, filepath.Join(t.TempDir(), "again")} {
		if code, _, stderr := run(t, nil, "synth", "--config", cfg, "--out-dir", d); code != ExitOK {
			t.Fatalf("synth: exit %d: %s", code, stderr)
		}
		again := readSynthDir(t, d)
		if len(again) != len(first) {
			t.Errorf("%s: %d files, want %d", d, len(again), len(first))
		}
		for name, b := range first {
			if !bytes.Equal(again[name], b) {
				t.Errorf("%s/%s differs between runs", d, name)
			}
		}
	}
	for name, b := range first {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o644 {
			t.Errorf("%s mode %v, want 0644", name, info.Mode().Perm())
		}
		if strings.HasSuffix(name, ".yaml") {
			if _, err := cft.Parse(b); err != nil {
				t.Errorf("%s does not parse as a template: %v", name, err)
			}
		}
	}
}

// The parameters file is what `aws cloudformation create-stack --parameters file://` reads, with
// the configuration's values, and every key is a parameter of the template beside it.
func TestSynthParametersFile(t *testing.T) {
	cfg := synthConfig(t)
	dir := t.TempDir()
	if code, _, stderr := run(t, nil, "synth", "--config", cfg, "-d", dir, "--stack", "network"); code != ExitOK {
		t.Fatalf("synth: exit %d: %s", code, stderr)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "network.parameters.json"))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var params []struct {
		ParameterKey   string
		ParameterValue string
	}
	if err := dec.Decode(&params); err != nil {
		t.Fatalf("parameters file: %v\n%s", err, raw)
	}
	got := map[string]string{}
	for _, p := range params {
		got[p.ParameterKey] = p.ParameterValue
	}
	for k, v := range map[string]string{"ClassB": "17", "FlowLogsRetentionInDays": "30", "RemoteAccessCIDR": "203.0.113.0/24"} {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	// The file's exact shape: the keys the AWS CLI expects, indented, one trailing newline.
	if !strings.HasPrefix(string(raw), "[\n  {\n    \"ParameterKey\": \"ClassB\",\n    \"ParameterValue\": \"17\"\n  },") || !strings.HasSuffix(string(raw), "]\n") {
		t.Errorf("unexpected layout:\n%s", raw)
	}
	tplBytes, err := os.ReadFile(filepath.Join(dir, "network.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := cft.Parse(tplBytes)
	if err != nil {
		t.Fatal(err)
	}
	for k := range got {
		if tpl.Parameter(k) == nil {
			t.Errorf("parameter %s is not in the template", k)
		}
	}
	if _, err := tpl.Evaluate(got); err != nil {
		t.Errorf("template does not resolve with the parameters file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "bastion.yaml")); err == nil {
		t.Error("--stack network wrote other stacks too")
	}
}

func TestSynthJSON(t *testing.T) {
	cfg := synthConfig(t)
	dir := t.TempDir()
	code, stdout, stderr := run(t, nil, "synth", "--config", cfg, "-d", dir, "--stack", "network", "--format", "json")
	if code != ExitOK {
		t.Fatalf("synth: exit %d: %s", code, stderr)
	}
	path := filepath.Join(dir, "network.json")
	if !strings.Contains(stdout, path) {
		t.Errorf("stdout %q lacks %s", stdout, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if _, ok := v["Resources"].(map[string]any)["VPC"]; !ok {
		t.Error("JSON template has no VPC")
	}
}

func TestSynthBadUsage(t *testing.T) {
	cfg := synthConfig(t)
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown stack", []string{"--stack", "nosuch"}, "allowed values are network, bastion, database"},
		{"unknown format", []string{"--format", "xml"}, "allowed values are yaml and json"},
		{"empty directory", []string{"-d", ""}, "a directory is required"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			args := append([]string{"synth", "--config", cfg, "-d", dir}, tt.args...)
			code, stdout, stderr := run(t, nil, args...)
			if code != ExitUsage || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, stderr, tt.want)
			}
			if stdout != "" {
				t.Errorf("wrote %q on bad usage", stdout)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("files written on bad usage: %v", entries)
			}
		})
	}
	// A bad configuration is refused before anything is written.
	dir := filepath.Join(t.TempDir(), "out")
	code, _, stderr := run(t, []string{"APGSTACK_NETWORK_CLASSB=256"}, "synth", "--config", cfg, "-d", dir)
	if code != ExitUsage || !strings.Contains(stderr, "network.classB") {
		t.Errorf("bad configuration: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Error("output directory created for a bad configuration")
	}
}

func synthKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// -o is the output format on synth too: the written paths as one JSON document, and the
// directory comes from --out-dir (-d), never from -o.
func TestSynthOutputFormatAndDirectory(t *testing.T) {
	cfg := synthConfig(t)
	dir := t.TempDir()
	code, stdout, stderr := run(t, nil, "synth", "--config", cfg, "-d", dir, "--stack", "network", "-o", "json")
	if code != ExitOK {
		t.Fatalf("synth -o json: exit %d\n%s", code, stderr)
	}
	var paths []string
	if err := json.Unmarshal([]byte(stdout), &paths); err != nil || len(paths) != 2 || !strings.HasPrefix(paths[0], dir) {
		t.Errorf("synth -o json printed %q (%v)", stdout, err)
	}
	if _, err := os.Stat("json"); err == nil {
		t.Error("synth -o json created a directory named json")
	}
}
