package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
)

// Revision names the apgstack source the figures were taken with. Builds from a git checkout
// carry it in their build information; a build without it (from an exported tree) may set it
// with -ldflags "-X github.com/apgstack/apgstack/bench.Revision=<commit>".
var Revision string

// BuildRevision is Revision, else the VCS revision of the running binary ("+modified" when its
// tree had uncommitted changes), else "".
func BuildRevision() string {
	if Revision != "" {
		return Revision
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	rev, modified := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" && modified {
		rev += "+modified"
	}
	return rev
}

// Machine describes where the figures were taken.
type Machine struct {
	CPU        string `json:"cpu"`
	Cores      int    `json:"cores"`
	MemoryMiB  int    `json:"memoryMiB"`
	OS         string `json:"os"`
	Kernel     string `json:"kernel"`
	PostgreSQL string `json:"postgresql"`
	Go         string `json:"go"`
}

// Fields lists the description as label/value pairs, in the order BENCHMARKS.md shows them.
func (m Machine) Fields() [][2]string {
	mem := "unknown"
	if m.MemoryMiB > 0 {
		mem = fmt.Sprintf("%.1f GiB", float64(m.MemoryMiB)/1024)
	}
	return [][2]string{
		{"CPU", m.CPU},
		{"Cores", strconv.Itoa(m.Cores)},
		{"Memory", mem},
		{"OS", m.OS},
		{"Kernel", m.Kernel},
		{"PostgreSQL", m.PostgreSQL},
		{"Go", m.Go},
	}
}

// DescribeMachine reads the description from /proc and /etc; pgVersion is the server version in
// use (the caller found the binaries).
func DescribeMachine(pgVersion string) Machine {
	m := Machine{Cores: runtime.NumCPU(), PostgreSQL: pgVersion, Go: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPU = cpuModel(data)
	}
	if m.CPU == "" {
		m.CPU = "unknown (" + runtime.GOARCH + ")"
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.MemoryMiB = memTotalMiB(data)
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(data))
	}
	if data, err := os.ReadFile("/etc/os-release"); err == nil {
		m.OS = osName(data)
	}
	return m
}

// cpuModel is the first "model name" (x86) or "Model"/"CPU part" line of /proc/cpuinfo.
func cpuModel(cpuinfo []byte) string {
	for _, key := range []string{"model name", "Model", "cpu model"} {
		if v := field(cpuinfo, key, ':'); v != "" {
			return v
		}
	}
	return ""
}

func memTotalMiB(meminfo []byte) int {
	v := field(meminfo, "MemTotal", ':') // "24684096 kB"
	kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(v, "kB")))
	if err != nil {
		return 0
	}
	return kb / 1024
}

func osName(osRelease []byte) string {
	return strings.Trim(field(osRelease, "PRETTY_NAME", '='), `"`)
}

// field returns the value of the first "key<sep>value" line.
func field(data []byte, key string, sep byte) string {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), string(sep))
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// LoadAverage is the 1, 5 and 15 minute load average from /proc/loadavg ("" when unknown).
func LoadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], ", ")
}
