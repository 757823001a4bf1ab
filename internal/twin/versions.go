package twin

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/internal/twin/instance"
)

// RunsOn says, in one line for apgstack.yaml, which installed PostgreSQL major the twin of cfg
// would run on: the same discovery `up` makes (internal/twin/instance), so init and up agree.
func RunsOn(ctx context.Context, cfg apgstack.Config) (string, error) {
	want, err := strconv.Atoi(apgstack.EngineMajor(cfg.Database.EngineVersion))
	if err != nil {
		return "", fmt.Errorf("database.engineVersion %q: %w", cfg.Database.EngineVersion, err)
	}
	b, _, err := instance.FindBinaries(ctx, want, cfg.Target.Local.StrictVersion)
	var mismatch *instance.VersionMismatch
	switch {
	case errors.Is(err, instance.ErrNotInstalled):
		return fmt.Sprintf("no PostgreSQL server is installed on this machine: install postgresql-%d (https://apt.postgresql.org; Debian 12 ships postgresql-15) before apgstack up", want), nil
	case errors.As(err, &mismatch):
		return fmt.Sprintf("PostgreSQL %d is not installed on this machine (installed: %v) and strictVersion refuses another major: up fails until postgresql-%d is installed", want, mismatch.Installed, want), nil
	case err != nil:
		return "", err
	case b.Major == want:
		return fmt.Sprintf("the local twin runs on PostgreSQL %s, installed on this machine", b.Version), nil
	}
	return fmt.Sprintf("the local twin runs on PostgreSQL %s: PostgreSQL %d is not installed on this machine and %d is the nearest installed major "+
		"(install postgresql-%d from https://apt.postgresql.org, or set a %d.x engineVersion)", b.Version, want, b.Major, want, b.Major), nil
}
