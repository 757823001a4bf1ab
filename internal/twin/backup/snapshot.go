package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apgstack/apgstack/internal/runas"
)

// A snapshot is a self-contained base backup (pg_basebackup, tar format, with the WAL it needs)
// kept in a snapshot directory outside any one cluster's repository: like a DB cluster snapshot
// it outlives the cluster, is not expired by the backup retention and restores with nothing but
// itself. Restoring extracts it into a new data directory; the server then recovers to the end of
// the backup and comes up as a writer.

// SnapshotNamePattern is what a local snapshot may be called (a DB cluster snapshot identifier:
// a letter, then letters, digits and hyphens, no two hyphens in a row nor one at the end).
var SnapshotNamePattern = regexp.MustCompile(`^[A-Za-z](?:-?[A-Za-z0-9])*$`)

// CheckSnapshotName says why name cannot be a snapshot's.
func CheckSnapshotName(name string) error {
	if len(name) > 255 || !SnapshotNamePattern.MatchString(name) {
		return fmt.Errorf("snapshot name %q: 1 to 255 letters, digits or hyphens, starting with a letter, without two hyphens in a row or one at the end (an ARN does not name a local snapshot)", name)
	}
	return nil
}

// Snapshot is one snapshot's description (snapshot.json).
type Snapshot struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	// Cluster is the database stack the snapshot was taken of; Kind "manual" or "final" (at down).
	Cluster string `json:"cluster"`
	Kind    string `json:"kind"`
	// ServerMajor is the PostgreSQL major of the data; a restore needs the same.
	ServerMajor int    `json:"serverMajor"`
	DBName      string `json:"dbName,omitempty"`
	Username    string `json:"username,omitempty"`
	Size        int64  `json:"size"` // bytes on disk (compressed)
	Dir         string `json:"dir"`
}

// Source is the running server a snapshot is taken from.
type Source struct {
	SocketDir string
	Port      int
	User      string // superuser, peer authentication on the socket
}

// Snapshots is a snapshot directory.
type Snapshots struct {
	Dir    string
	BinDir string // PostgreSQL's programs (pg_basebackup)
	Acct   *runas.Account
}

const snapshotMeta = "snapshot.json"

func (s *Snapshots) path(name string) string { return filepath.Join(s.Dir, name) }

// Create takes a snapshot of the running server. meta.Name must be new.
func (s *Snapshots) Create(ctx context.Context, src Source, meta Snapshot) (Snapshot, error) {
	if err := CheckSnapshotName(meta.Name); err != nil {
		return Snapshot{}, err
	}
	if _, err := os.Stat(s.path(meta.Name)); err == nil {
		return Snapshot{}, fmt.Errorf("snapshot %s already exists in %s", meta.Name, s.Dir)
	}
	if err := s.Acct.MkdirAll(s.Dir, 0o700); err != nil {
		return Snapshot{}, fmt.Errorf("snapshot directory: %w", err)
	}
	partial := s.path("." + meta.Name + ".partial")
	if err := os.RemoveAll(partial); err != nil {
		return Snapshot{}, err
	}
	if err := s.Acct.MkdirAll(partial, 0o700); err != nil {
		return Snapshot{}, err
	}
	if src.User == "" {
		src.User = "postgres"
	}
	// -X stream puts the WAL the backup needs beside it (pg_wal.tar.gz): self-contained.
	if err := s.run(ctx, filepath.Join(s.BinDir, "pg_basebackup"), "-h", src.SocketDir, "-p", strconv.Itoa(src.Port), "-U", src.User,
		"-D", partial, "-F", "tar", "-z", "-X", "stream", "--checkpoint=fast", "--no-password", "--label=apgstack snapshot "+meta.Name); err != nil {
		os.RemoveAll(partial)
		return Snapshot{}, fmt.Errorf("snapshot %s: %w", meta.Name, err)
	}
	if meta.Created.IsZero() {
		meta.Created = time.Now().UTC()
	}
	if meta.Kind == "" {
		meta.Kind = "manual"
	}
	meta.Size = dirSize(partial)
	meta.Dir = ""
	data, _ := json.MarshalIndent(meta, "", "  ")
	if err := os.WriteFile(filepath.Join(partial, snapshotMeta), append(data, '\n'), 0o600); err != nil {
		os.RemoveAll(partial)
		return Snapshot{}, fmt.Errorf("snapshot %s: %w", meta.Name, err)
	}
	if err := os.Rename(partial, s.path(meta.Name)); err != nil {
		os.RemoveAll(partial)
		return Snapshot{}, fmt.Errorf("snapshot %s: %w", meta.Name, err)
	}
	meta.Dir = s.path(meta.Name)
	return meta, nil
}

// List returns the snapshots, oldest first. A missing directory holds none.
func (s *Snapshots) List() ([]Snapshot, error) {
	entries, err := os.ReadDir(s.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("snapshots: %w", err)
	}
	var out []Snapshot
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		sn, err := s.Get(e.Name())
		if err != nil {
			continue // not a snapshot (or an unreadable one): Get names it when asked for
		}
		out = append(out, sn)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// ErrNoSnapshot is returned for a snapshot that does not exist.
var ErrNoSnapshot = errors.New("no such snapshot")

// Get returns one snapshot.
func (s *Snapshots) Get(name string) (Snapshot, error) {
	if err := CheckSnapshotName(name); err != nil {
		return Snapshot{}, err
	}
	data, err := os.ReadFile(filepath.Join(s.path(name), snapshotMeta))
	if errors.Is(err, os.ErrNotExist) {
		return Snapshot{}, fmt.Errorf("snapshot %s in %s: %w", name, s.Dir, ErrNoSnapshot)
	}
	if err != nil {
		return Snapshot{}, fmt.Errorf("snapshot %s: %w", name, err)
	}
	var sn Snapshot
	if err := json.Unmarshal(data, &sn); err != nil {
		return Snapshot{}, fmt.Errorf("snapshot %s: damaged %s: %w", name, snapshotMeta, err)
	}
	sn.Dir = s.path(name)
	return sn, nil
}

// Delete removes a snapshot.
func (s *Snapshots) Delete(name string) error {
	if _, err := s.Get(name); err != nil {
		return err
	}
	if err := os.RemoveAll(s.path(name)); err != nil {
		return fmt.Errorf("delete snapshot %s: %w", name, err)
	}
	return nil
}

// Restore extracts a snapshot into a new data directory (which must not exist or be empty). At
// its first start the server recovers to the end of the snapshot and comes up as a writer.
// postgresql.auto.conf is emptied: ALTER SYSTEM settings (synchronous_standby_names) were the
// source's own business.
func (s *Snapshots) Restore(ctx context.Context, name, dataDir string) error {
	sn, err := s.Get(name)
	if err != nil {
		return err
	}
	if entries, err := os.ReadDir(dataDir); err == nil && len(entries) > 0 {
		return fmt.Errorf("restore snapshot %s: data directory %s is not empty", name, dataDir)
	}
	if err := s.Acct.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("restore snapshot %s: %w", name, err)
	}
	if err := s.run(ctx, "tar", "-x", "-z", "-f", filepath.Join(sn.Dir, "base.tar.gz"), "-C", dataDir); err != nil {
		return fmt.Errorf("restore snapshot %s: %w", name, err)
	}
	wal := filepath.Join(dataDir, "pg_wal")
	if err := s.Acct.MkdirAll(wal, 0o700); err != nil {
		return fmt.Errorf("restore snapshot %s: %w", name, err)
	}
	if err := s.run(ctx, "tar", "-x", "-z", "-f", filepath.Join(sn.Dir, "pg_wal.tar.gz"), "-C", wal); err != nil {
		return fmt.Errorf("restore snapshot %s: %w", name, err)
	}
	auto := filepath.Join(dataDir, "postgresql.auto.conf")
	if err := os.WriteFile(auto, []byte("# emptied by apgstack when restoring snapshot "+name+"\n"), 0o600); err != nil {
		return fmt.Errorf("restore snapshot %s: %w", name, err)
	}
	return s.Acct.Chown(auto)
}

func (s *Snapshots) run(ctx context.Context, bin string, args ...string) error {
	cmd := s.Acct.Command(ctx, bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := runGroup(cmd); err != nil {
		return fmt.Errorf("%s: %w: %s", filepath.Base(bin), err, strings.TrimSpace(out.String()))
	}
	return nil
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
