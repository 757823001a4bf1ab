// Package statedir guards the local twin's state directory: a twin is created only in a new or
// empty directory (or one that already holds a twin), the directory carries a marker saying it
// belongs to apgstack, and deleting a twin removes only what apgstack created there, never a
// directory it does not own. `/`, home directories and system directories are refused outright.
package statedir

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// MarkerName is the file that says a directory holds an apgstack twin.
const MarkerName = ".apgstack-twin"

// Marker is the marker file's content.
type Marker struct {
	Tool    string    `json:"tool"` // always "apgstack"
	Created time.Time `json:"created"`
}

// isOwned reports whether name is one of apgstack's entries or a temporary file of one being
// replaced atomically (name.tmp, .name.tmp-*, .tmp-*).
func isOwned(name string) bool {
	if slices.Contains(owned, name) {
		return true
	}
	for _, o := range owned {
		if name == o+".tmp" || strings.HasPrefix(name, "."+o+".tmp-") {
			return true
		}
	}
	return strings.HasPrefix(name, ".tmp-")
}

// ErrRefused marks a state directory apgstack will not create a twin in or delete; the CLI
// turns it into a usage error (exit 2).
var ErrRefused = errors.New("refused")

// refusal is an error that is ErrRefused without saying "refused" at the end of the message.
type refusal struct{ msg string }

func (r refusal) Error() string        { return r.msg }
func (r refusal) Is(target error) bool { return target == ErrRefused }

func refuse(dir, format string, args ...any) error {
	return refusal{fmt.Sprintf("state directory %s: ", dir) + fmt.Sprintf(format, args...)}
}

// system holds directories that are never a twin's, whatever they contain.
var system = []string{
	"/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/media", "/mnt",
	"/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/usr/local", "/var",
	"/var/lib", "/var/tmp",
}

// forbidden refuses `/`, system directories and any account's home directory.
func forbidden(dir string) error {
	clean := filepath.Clean(dir)
	if slices.Contains(system, clean) {
		return refuse(dir, "a system directory is never a state directory; choose a new directory such as %s",
			filepath.Join(clean, ".apgstack"))
	}
	if slices.Contains(homes(), clean) {
		return refuse(dir, "a home directory is never a state directory; choose a new directory such as %s",
			filepath.Join(clean, ".apgstack"))
	}
	return nil
}

// homes lists the home directories of this user and of every account in /etc/passwd.
func homes() []string {
	var out []string
	if h, err := os.UserHomeDir(); err == nil {
		out = append(out, filepath.Clean(h))
	}
	if u, err := user.Current(); err == nil && u.HomeDir != "" {
		out = append(out, filepath.Clean(u.HomeDir))
	}
	data, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 6 && f[5] != "" && f[5] != "/" && f[5] != "/nonexistent" {
			out = append(out, filepath.Clean(f[5]))
		}
	}
	return out
}

// Has reports whether dir carries the marker of a twin.
func Has(dir string) bool {
	m, err := readMarker(dir)
	return err == nil && m.Tool == "apgstack"
}

func readMarker(dir string) (Marker, error) {
	var m Marker
	data, err := os.ReadFile(filepath.Join(dir, MarkerName))
	if err != nil {
		return m, err
	}
	return m, json.Unmarshal(data, &m)
}

// Claim makes dir a twin's state directory, before anything else is written there. It accepts a
// directory that does not exist (its missing parents are created with mkdir, mode 0755 so the
// server account can pass), an empty directory, a directory that already carries the marker, and
// a twin's directory from before the marker (only apgstack's own entries). It refuses `/`, system
// and home directories, a path that names a file, and a directory holding anything else.
func Claim(dir string) error {
	if err := CheckClaimable(dir); err != nil {
		return err
	}
	if Has(dir) {
		return nil
	}
	if err := MkdirReachable(dir); err != nil {
		return err
	}
	data, err := json.MarshalIndent(Marker{Tool: "apgstack", Created: time.Now().UTC()}, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, MarkerName)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("state directory %s: write its marker: %w", dir, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("state directory %s: write its marker: %w", dir, err)
	}
	return nil
}

// CheckClaimable refuses, without writing anything, a directory Claim would refuse.
func CheckClaimable(dir string) error {
	if err := forbidden(dir); err != nil {
		return err
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("state directory %s: %w", dir, err)
	case !fi.IsDir():
		return refuse(dir, "it is a file, not a directory; name a new directory for the twin's state")
	case Has(dir):
		return nil
	}
	foreign, err := Foreign(dir)
	if err != nil {
		return err
	}
	if len(foreign) > 0 {
		return refuse(dir, "it holds files apgstack did not create (%s); name a new or empty directory for the twin's state",
			summarize(foreign))
	}
	return nil
}

// Foreign lists the entries at the top of dir that apgstack did not create.
func Foreign(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("state directory %s: %w", dir, err)
	}
	var out []string
	for _, e := range entries {
		if !isOwned(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

func summarize(names []string) string {
	if len(names) > 5 {
		return strings.Join(names[:5], ", ") + fmt.Sprintf(" and %d more", len(names)-5)
	}
	return strings.Join(names, ", ")
}

// CheckRemovable refuses, before anything is stopped or deleted, a directory Remove would refuse.
// A directory that does not exist is removable (there is nothing to do).
func CheckRemovable(dir string) error {
	if err := forbidden(dir); err != nil {
		return err
	}
	fi, err := os.Lstat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("state directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return refuse(dir, "it is not a directory; apgstack deletes only a twin's state directory")
	}
	if !Has(dir) {
		return refuse(dir, "it has no %s marker, so it is not a twin's state directory; nothing was deleted", MarkerName)
	}
	foreign, err := Foreign(dir)
	if err != nil {
		return err
	}
	if len(foreign) > 0 {
		return refuse(dir, "it holds files apgstack did not create (%s); move them away first; nothing was deleted", summarize(foreign))
	}
	return nil
}

// Remove deletes a twin's state directory: apgstack's own entries, then the directory itself.
// It refuses (ErrRefused) what CheckRemovable refuses and deletes nothing then.
func Remove(dir string) error {
	if err := CheckRemovable(dir); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("state directory %s: %w", dir, err)
	}
	// The marker goes last, so that an interrupted delete can be finished by running it again.
	for _, e := range entries {
		if e.Name() == MarkerName {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("delete state directory %s: %w", dir, err)
		}
	}
	if err := os.Remove(filepath.Join(dir, MarkerName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete state directory %s: %w", dir, err)
	}
	if err := os.Remove(dir); err != nil {
		return fmt.Errorf("delete state directory %s: %w", dir, err)
	}
	return nil
}

// MkdirReachable creates dir and its missing parents as 0755 whatever the umask, so that the
// server account can pass through the folders apgstack itself created.
func MkdirReachable(dir string) error {
	var missing []string
	for p := dir; p != filepath.Dir(p); p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil {
			break
		}
		missing = append(missing, p)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create state directory: %w", err)
		}
		if err := os.Chmod(missing[i], 0o755); err != nil {
			return fmt.Errorf("create state directory: %w", err)
		}
	}
	return nil
}
