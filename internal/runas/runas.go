// Package runas runs PostgreSQL's programs as an unprivileged account. PostgreSQL refuses to run
// as root, and apgstack is often run as root (containers, CI, fresh machines): then every server
// process runs as the named account (Debian's "postgres" by default), and every directory it uses
// must be owned by it and reachable through every folder above it.
package runas

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/apgstack/apgstack/internal/atomicfile"
)

// DefaultUser is the account Debian's postgresql packages create.
const DefaultUser = "postgres"

// Account is who server processes run as. When apgstack is not root, it is the current user and
// no switching happens.
type Account struct {
	Name     string
	UID, GID int
	Home     string
	switchTo bool // true when running as root and switching to an unprivileged account
}

// Resolve picks the account: the current user when not root; otherwise the named one (empty means
// DefaultUser). The error says what to do when no unprivileged account exists.
func Resolve(name string) (*Account, error) {
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			return nil, fmt.Errorf("look up current user: %w", err)
		}
		return fromUser(u, false)
	}
	if name == "" {
		name = DefaultUser
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, noAccount(name, err)
	}
	a, err := fromUser(u, true)
	if err != nil {
		return nil, err
	}
	if a.UID == 0 {
		return nil, fmt.Errorf("target.local.osUser %q is root: PostgreSQL refuses to run as root; name an unprivileged account such as %q", name, DefaultUser)
	}
	return a, nil
}

// noAccount names the account that was tried (and why that one), what to do, and the
// unprivileged accounts that do exist here.
func noAccount(name string, err error) error {
	tried := fmt.Sprintf("target.local.osUser %q", name)
	if name == DefaultUser {
		tried = fmt.Sprintf("the server account %q (target.local.osUser empty or %q)", name, name)
	}
	fix := fmt.Sprintf("create it with `useradd --system --create-home %s`, name an existing account with target.local.osUser, or run apgstack as an unprivileged user", name)
	if name == DefaultUser {
		fix = "install Debian's postgresql package (it creates postgres), " + fix
	} else if _, err := user.Lookup(DefaultUser); err == nil {
		fix = fmt.Sprintf("leave target.local.osUser empty to use %s, ", DefaultUser) + fix
	}
	exists := "no unprivileged account exists here"
	if others := unprivileged(name); len(others) > 0 {
		exists = "existing: " + strings.Join(others, ", ")
	}
	return fmt.Errorf("%s: no such account on this machine (PostgreSQL refuses to run as root, so apgstack runs it as that account); %s; %s: %w",
		tried, exists, fix, err)
}

// unprivileged lists, for the error above, the accounts PostgreSQL could run as: postgres first
// when it exists, then regular users (uid 1000 and up, not nobody), five at most.
func unprivileged(except string) []string {
	var out []string
	if except != DefaultUser {
		if u, err := user.Lookup(DefaultUser); err == nil {
			out = append(out, fmt.Sprintf("the %s account (uid %s)", u.Username, u.Uid))
		}
	}
	data, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 3 || f[0] == except || f[0] == DefaultUser || f[0] == "nobody" {
			continue
		}
		if uid, err := strconv.Atoi(f[2]); err == nil && uid >= 1000 && uid < 65534 && len(out) < 5 {
			out = append(out, fmt.Sprintf("the %s account (uid %d)", f[0], uid))
		}
	}
	return out
}

func fromUser(u *user.User, switchTo bool) (*Account, error) {
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("user %s: uid %q: %w", u.Username, u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, fmt.Errorf("user %s: gid %q: %w", u.Username, u.Gid, err)
	}
	return &Account{Name: u.Username, UID: uid, GID: gid, Home: u.HomeDir, switchTo: switchTo}, nil
}

// Switches reports whether commands run as another account than apgstack itself.
func (a *Account) Switches() bool { return a.switchTo }

// Command builds a command that runs as the account. The environment is minimal and explicit so
// that root's variables (HOME, PGPASSWORD, ...) do not leak into server processes.
func (a *Account) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	a.Apply(cmd)
	return cmd
}

// Apply makes an already built command run as the account.
func (a *Account) Apply(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	if a.switchTo {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(a.UID), Gid: uint32(a.GID)}
	}
	if cmd.Env == nil {
		cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + a.Home, "USER=" + a.Name, "LANG=C.UTF-8", "LC_ALL=C.UTF-8"}
	}
}

// MkdirAll creates dir (and missing parents) owned by the account with the given mode, and checks
// that the account can reach it through every folder above it.
func (a *Account) MkdirAll(dir string, mode os.FileMode) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, mode); err != nil {
		return fmt.Errorf("create %s: %w", abs, err)
	}
	if err := os.Chmod(abs, mode); err != nil {
		return fmt.Errorf("chmod %s: %w", abs, err)
	}
	if err := a.Chown(abs); err != nil {
		return err
	}
	return a.CheckReachable(abs)
}

// Chown gives path to the account (a no-op when not switching accounts).
func (a *Account) Chown(path string) error {
	if !a.switchTo {
		return nil
	}
	if err := os.Lchown(path, a.UID, a.GID); err != nil {
		return fmt.Errorf("give %s to %s: %w", path, a.Name, err)
	}
	return nil
}

// WriteFile replaces path atomically and durably with data, mode mode, owned by the account from
// its first byte (server programs insist on owning their files; a key must never be readable by
// others, not even for a moment).
func (a *Account) WriteFile(path string, data []byte, mode os.FileMode) error {
	opts := []atomicfile.Option{atomicfile.Mode(mode)}
	if a.switchTo {
		opts = append(opts, atomicfile.Owner(a.UID, a.GID))
	}
	return atomicfile.Write(path, data, opts...)
}

// ErrUnreachable marks a directory that the account cannot reach.
var ErrUnreachable = errors.New("not reachable by the server account")

// CheckReachable verifies that every folder above dir lets the account pass (search permission),
// and names the first one that does not, with the command that fixes it.
func (a *Account) CheckReachable(dir string) error {
	if !a.switchTo {
		return nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for p := filepath.Dir(abs); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		if !a.canSearch(fi) {
			return fmt.Errorf("%s: the folder %s above it does not let %s pass (mode %v): "+
				"choose a state directory elsewhere (--state-dir, e.g. under /var/tmp or /srv) or run `chmod o+x %s`: %w",
				abs, p, a.Name, fi.Mode().Perm(), p, ErrUnreachable)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

func (a *Account) canSearch(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	perm := fi.Mode().Perm()
	switch {
	case int(st.Uid) == a.UID:
		return perm&0o100 != 0
	case int(st.Gid) == a.GID:
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}
