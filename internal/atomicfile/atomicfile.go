// Package atomicfile replaces files atomically and durably: a reader sees the old content or the
// new, never a part, and after a power cut the file holds one of the two, never nothing. Every
// file that records state (who is writer, which password is current, what a snapshot holds) is
// written through it.
//
// The recipe: write a temporary file in the same directory (so the rename stays within one file
// system), give it its mode and owner, fsync it, rename it over the target and fsync the
// directory (so the rename itself survives a crash).
package atomicfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// DefaultMode is the mode of a file written without Mode: state often holds secrets.
const DefaultMode os.FileMode = 0o600

type options struct {
	mode     os.FileMode
	chown    bool
	uid, gid int
}

// An Option adjusts a write.
type Option func(*options)

// Mode sets the file's permission bits, whatever the umask.
func Mode(m os.FileMode) Option { return func(o *options) { o.mode = m } }

// Owner gives the file to uid:gid before it takes the target's place, so that it never exists
// under its final name with another owner.
func Owner(uid, gid int) Option {
	return func(o *options) { o.chown, o.uid, o.gid = true, uid, gid }
}

// Write replaces path with data. When it fails before the rename, the old file is intact and no
// temporary file is left; after the rename only the directory's fsync can fail, and the error
// says so.
func Write(path string, data []byte, opts ...Option) error {
	o := options{mode: DefaultMode}
	for _, opt := range opts {
		opt(&o)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := fill(tmp, data, o); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := SyncDir(dir); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// fill gives tmp its mode, owner and content, durably, and closes it. Mode and owner come first:
// a key is never readable by others, not even for a moment.
func fill(tmp *os.File, data []byte, o options) error {
	if err := tmp.Chmod(o.mode); err != nil {
		return err
	}
	if o.chown {
		if err := tmp.Chown(o.uid, o.gid); err != nil {
			return err
		}
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	return tmp.Close()
}

// WriteJSON replaces path with v as indented JSON and a final newline.
func WriteJSON(path string, v any, opts ...Option) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return Write(path, append(data, '\n'), opts...)
}

// MkdirAll creates dir and its missing parents, like os.MkdirAll, durably: the parent of every
// directory it creates is synced, so that a file written into a new directory does not vanish
// with it after a crash.
func MkdirAll(dir string, perm os.FileMode) error {
	dir = filepath.Clean(dir)
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("create %s: %w", dir, syscall.ENOTDIR)
		}
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := MkdirAll(parent, perm); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, perm); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // made meanwhile by someone else, who syncs it
		}
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return SyncDir(parent)
}

// SyncDir makes the directory's entries durable: a rename or a new file in it survives a crash
// only once its directory is synced.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
