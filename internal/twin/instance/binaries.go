package instance

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Binaries are one installed PostgreSQL server version.
type Binaries struct {
	BinDir    string `json:"binDir"`
	Major     int    `json:"major"`
	Version   string `json:"version"`   // e.g. 15.18
	PkgLibDir string `json:"pkgLibDir"` // where shared libraries (extensions) live
}

// Path is a program in BinDir.
func (b Binaries) Path(program string) string { return filepath.Join(b.BinDir, program) }

// HasLibrary reports whether a shared library (such as pg_hint_plan) is installed.
func (b Binaries) HasLibrary(name string) bool {
	_, err := os.Stat(filepath.Join(b.PkgLibDir, name+".so"))
	return err == nil
}

// DebianRoot is where Debian installs server versions side by side (/usr/lib/postgresql/<major>/bin).
var DebianRoot = "/usr/lib/postgresql"

// ErrNotInstalled is returned when no PostgreSQL server is installed.
var ErrNotInstalled = errors.New("no PostgreSQL server installed")

// VersionMismatch is returned with strict version checking when the configured major is missing.
type VersionMismatch struct {
	Want      int
	Installed []int
}

func (e *VersionMismatch) Error() string {
	return fmt.Sprintf("PostgreSQL %d (database.engineVersion) is not installed on this machine (installed: %s) and strict version checking refuses another major: "+
		"install postgresql-%d from the PostgreSQL project's apt repository (https://apt.postgresql.org; Debian 12's own archive ships only PostgreSQL 15), "+
		"or set database.engineVersion to an installed major, or drop --strict-version / target.local.strictVersion",
		e.Want, joinInts(e.Installed), e.Want)
}

// FindBinaries finds the server programs for the wanted major: Debian's layout first, then
// pg_config on PATH. When that major is missing it picks the nearest installed one and returns a
// warning saying so, unless strict, which refuses with *VersionMismatch.
func FindBinaries(ctx context.Context, want int, strict bool) (Binaries, string, error) {
	found := map[int]Binaries{}
	if dirs, _ := filepath.Glob(filepath.Join(DebianRoot, "*", "bin", "postgres")); len(dirs) > 0 {
		for _, p := range dirs {
			if b, err := probe(ctx, filepath.Dir(p)); err == nil {
				found[b.Major] = b
			}
		}
	}
	if pgc, err := exec.LookPath("pg_config"); err == nil {
		if out, err := exec.CommandContext(ctx, pgc, "--bindir").Output(); err == nil {
			if b, err := probe(ctx, strings.TrimSpace(string(out))); err == nil {
				if _, ok := found[b.Major]; !ok {
					found[b.Major] = b
				}
			}
		}
	}
	pick, err := Choose(slices.Collect(maps.Keys(found)), want, strict)
	if err != nil {
		return Binaries{}, "", err
	}
	b := found[pick]
	if pick != want {
		return b, fmt.Sprintf("database.engineVersion asks for PostgreSQL %d, which is not installed; running on PostgreSQL %s, the nearest installed major "+
			"(PostgreSQL %d is in the PostgreSQL project's apt repository, https://apt.postgresql.org; --strict-version refuses instead)", want, b.Version, want), nil
	}
	return b, "", nil
}

// Choose picks the wanted major, else the nearest installed (the newer on a tie).
func Choose(installed []int, want int, strict bool) (int, error) {
	if len(installed) == 0 {
		return 0, fmt.Errorf("%w: install the server package, on Debian 12 `apt-get install postgresql-15` "+
			"(or postgresql-%d from https://apt.postgresql.org), then run apgstack up again", ErrNotInstalled, want)
	}
	sorted := slices.Sorted(slices.Values(installed))
	best := -1
	for _, m := range sorted {
		if m == want {
			return m, nil
		}
		if best < 0 || abs(m-want) <= abs(best-want) {
			best = m
		}
	}
	if strict {
		return 0, &VersionMismatch{Want: want, Installed: sorted}
	}
	return best, nil
}

var versionRE = regexp.MustCompile(`\(PostgreSQL\) (\d+)(\.\d+)?`)

func probe(ctx context.Context, binDir string) (Binaries, error) {
	for _, p := range []string{"postgres", "initdb", "pg_basebackup"} {
		if _, err := os.Stat(filepath.Join(binDir, p)); err != nil {
			return Binaries{}, err
		}
	}
	out, err := exec.CommandContext(ctx, filepath.Join(binDir, "postgres"), "--version").Output()
	if err != nil {
		return Binaries{}, fmt.Errorf("%s/postgres --version: %w", binDir, err)
	}
	m := versionRE.FindStringSubmatch(string(out))
	if m == nil {
		return Binaries{}, fmt.Errorf("%s/postgres --version: unexpected %q", binDir, out)
	}
	major, _ := strconv.Atoi(m[1])
	b := Binaries{BinDir: binDir, Major: major, Version: m[1] + m[2], PkgLibDir: filepath.Join(filepath.Dir(binDir), "lib")}
	if out, err := exec.CommandContext(ctx, filepath.Join(binDir, "pg_config"), "--pkglibdir").Output(); err == nil {
		b.PkgLibDir = strings.TrimSpace(string(out))
	}
	return b, nil
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}
