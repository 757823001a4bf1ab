package atomicfile

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		name     string
		old      string // "" when the file does not exist yet
		opts     []Option
		wantMode os.FileMode
	}{
		{name: "new file, default mode", wantMode: 0o600},
		{name: "replaces an old file", old: "old", wantMode: 0o600},
		{name: "mode", opts: []Option{Mode(0o644)}, wantMode: 0o644},
		{name: "mode whatever the umask", opts: []Option{Mode(0o666)}, wantMode: 0o666},
		{name: "owner", opts: []Option{Owner(os.Getuid(), os.Getgid()), Mode(0o640)}, wantMode: 0o640},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f")
			if tt.old != "" {
				if err := os.WriteFile(path, []byte(tt.old), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := Write(path, []byte("new"), tt.opts...); err != nil {
				t.Fatal(err)
			}
			assertContent(t, path, "new")
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != tt.wantMode {
				t.Errorf("mode %v, want %v", fi.Mode().Perm(), tt.wantMode)
			}
			assertNoTemp(t, dir)
		})
	}
}

// Owner gives the file away before it takes the target's name (root only: others cannot chown).
func TestOwnerOtherAccount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another account needs root")
	}
	path := filepath.Join(t.TempDir(), "f")
	if err := Write(path, []byte("x"), Owner(4242, 4343)); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != 4242 || st.Gid != 4343 {
		t.Errorf("owner %d:%d, want 4242:4343", st.Uid, st.Gid)
	}
}

func TestWriteJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	if err := WriteJSON(path, map[string]int{"a": 1}, Mode(0o644)); err != nil {
		t.Fatal(err)
	}
	assertContent(t, path, "{\n  \"a\": 1\n}\n")
}

// A failed write leaves the old file as it was and no temporary file behind.
func TestFailureKeepsOldFile(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, path string) // makes the write fail
		write func(path string) error
	}{
		{
			name:  "value that cannot be encoded",
			write: func(path string) error { return WriteJSON(path, map[string]any{"f": func() {}}) },
		},
		{
			name: "owner refused",
			setup: func(t *testing.T, path string) {
				if os.Geteuid() == 0 {
					t.Skip("root may chown to anyone")
				}
			},
			write: func(path string) error { return Write(path, []byte("new"), Owner(0, 0)) },
		},
		{
			// rename(2) may not replace an immutable file, not even for root.
			name: "rename refused",
			setup: func(t *testing.T, path string) {
				if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
					t.Skipf("chattr +i: %v: %s", err, out)
				}
				t.Cleanup(func() { _ = exec.Command("chattr", "-i", path).Run() })
			},
			write: func(path string) error { return Write(path, []byte("new")) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f")
			if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
				t.Fatal(err)
			}
			if tt.setup != nil {
				tt.setup(t, path)
			}
			err := tt.write(path)
			if err == nil {
				t.Fatal("write succeeded")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			assertContent(t, path, "old")
			assertNoTemp(t, dir)
		})
	}
}

func TestMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "f")
	if err := Write(path, nil); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
}

func assertContent(t *testing.T, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("content %q, want %q", got, want)
	}
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "f" && e.Name() != "state.json" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

func TestMkdirAll(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		dir     string
		wantErr bool
	}{
		{name: "nested", dir: filepath.Join(root, "a", "b", "c")},
		{name: "exists", dir: filepath.Join(root, "a", "b")},
		{name: "the root itself", dir: root},
		{name: "a file in the way", dir: file, wantErr: true},
		{name: "below a file", dir: filepath.Join(file, "x"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := MkdirAll(tt.dir, 0o700)
			if (err != nil) != tt.wantErr {
				t.Fatalf("MkdirAll(%s) = %v, want error %v", tt.dir, err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if fi, err := os.Stat(tt.dir); err != nil || !fi.IsDir() {
				t.Fatalf("%s: %v", tt.dir, err)
			}
		})
	}
}
