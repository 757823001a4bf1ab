package backup

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// walFile matches the names of archived WAL segments (24 hex digits, then pgBackRest's checksum
// and compression suffix) and timeline history files.
var (
	walSegment = regexp.MustCompile(`^[0-9A-F]{24}`)
	walHistory = regexp.MustCompile(`^[0-9A-F]{8}\.history`)
)

// SetFor is the backup set a restore to moment uses: the last one that ended by then (the last
// one of all for a zero moment). It is the same choice Restore makes.
func (i Info) SetFor(moment time.Time) (Set, bool) {
	var chosen Set
	ok := false
	for _, b := range i.Backups {
		if !b.Error && (moment.IsZero() || !b.Stop.After(moment)) {
			chosen, ok = b, true
		}
	}
	return chosen, ok
}

// CopyWAL copies the archived WAL that recovery from the backup set starting at segment from may
// replay (every later segment of any timeline, and every timeline history file) into dir as
// plain files owned by the server account. A cluster restored with them recovers without this
// repository, so it outlives the repository's twin. It returns how many files it copied.
func (r *Repo) CopyWAL(ctx context.Context, from, dir string) (int, error) {
	if len(from) < 24 {
		return 0, fmt.Errorf("backup: copy WAL from %q: not a WAL segment name", from)
	}
	root := filepath.Join(r.RepoPath(), "archive", r.cfg.Stanza)
	var names []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		base := d.Name()
		switch {
		case walHistory.MatchString(base):
			names = append(names, base[:len("00000000.history")])
		case walSegment.MatchString(base) && base[8:24] >= from[8:24]: // any timeline, from the same position on
			names = append(names, base[:24])
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("backup: list the archived WAL of stanza %s: %w", r.cfg.Stanza, err)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if err := r.acct.MkdirAll(dir, 0o700); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	for _, name := range names {
		argv := append(r.configArgs(), "archive-get", name, filepath.Join(dir, name))
		cmd := r.acct.Command(ctx, r.bin, argv...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := runGroup(cmd); err != nil {
			return 0, fmt.Errorf("backup: pgbackrest archive-get %s (stanza %s): %w: %s", name, r.cfg.Stanza, err, strings.TrimSpace(stderr.String()))
		}
	}
	return len(names), nil
}

// LocalRestoreCommand is a restore_command that reads WAL copied by CopyWAL from dir; a missing
// file fails the copy, which recovery takes as the end of the archive.
func LocalRestoreCommand(dir string) string {
	return fmt.Sprintf(`cp "%s/%%f" "%%p"`, dir)
}
