package twin

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/apgstack/apgstack"
)

// SnapshotHome is the state directory whose snapshots (statedir.Layout.SnapshotDir, beside it)
// the snapshot commands work on. It follows the state wherever up put it: the state directory
// when it exists (a link followed); else, once `down --delete` removed a twin placed under
// FallbackRoot together with its link, the place up would choose again, so the final snapshot
// that down took there is still listed, deleted and restored from.
func SnapshotHome(cfg apgstack.Config, flag string) (string, error) {
	link, err := configured(cfg, flag)
	if err != nil {
		return "", err
	}
	if _, err := os.Lstat(link); err == nil {
		real, err := filepath.EvalSymlinks(link)
		if err != nil {
			return "", fmt.Errorf("state directory %s: %w", link, err)
		}
		return real, nil
	}
	if _, target, ok := fallbackFor(cfg, flag, link); ok {
		return target, nil
	}
	return link, nil
}
