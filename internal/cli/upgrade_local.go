package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/internal/twin"
)

// localUpgradeOptions are upgrade's flags for the local target.
type localUpgradeOptions struct {
	to        string
	link      bool
	deleteOld bool
	dryRun    bool
}

// upgradeLocal upgrades the twin's engine: a minor version (or the same major) as an update of
// the twin; a major version through pg_upgrade, offline (upgradeMajor). --delete-old alone, on a
// twin already at the version, deletes the data directories an earlier major upgrade kept.
func (t *localTarget) upgradeLocal(ctx context.Context, o localUpgradeOptions) error {
	if !twin.Exists(t.dir) {
		return twin.NoTwin(t.dir)
	}
	rec, _, err := twin.Recorded(t.dir)
	if err != nil {
		return err
	}
	target := rec
	if err := target.Set("database.engineVersion", o.to); err != nil {
		return Exit(ExitUsage, err)
	}
	if err := target.Validate(); err != nil {
		return Exit(ExitUsage, err)
	}
	if twin.PendingMajorUpgrade(t.dir) {
		return t.resumeMajor(ctx, target, o)
	}
	plan, err := twin.PlanMajorUpgrade(ctx, t.dir, target)
	switch {
	case errors.Is(err, twin.ErrMajorNotInstalled) && apgstack.EngineMajor(rec.Database.EngineVersion) == apgstack.EngineMajor(o.to):
		// A minor version of the major the twin is configured with, which runs on the nearest
		// installed major: an update of the twin, as before.
		return t.Up(ctx, UpOptions{DryRun: o.dryRun})
	case err != nil:
		return Exit(ExitUsage, err)
	}
	if plan.Needed() {
		return t.upgradeMajor(ctx, target, plan, o)
	}
	if o.deleteOld {
		return t.deleteOldData()
	}
	return t.Up(ctx, UpOptions{DryRun: o.dryRun})
}

func (t *localTarget) upgradeMajor(ctx context.Context, target apgstack.Config, plan twin.MajorPlan, o localUpgradeOptions) error {
	a, dir := t.a, t.dir
	how := "copies the data files (the old data directory stays usable)"
	if o.link {
		how = "hard-links the data files (no second copy; the old data directory cannot be started once the upgraded one has run)"
	}
	fmt.Fprintf(a.Stderr, "major version upgrade of the twin in %s: PostgreSQL %d -> %d (%s, database.engineVersion %s)\n"+
		"  the twin stops (connections are refused until it is back), pg_upgrade %s into a new data directory,\n"+
		"  the configuration is carried over, the reader(s) %s are recreated from the upgraded writer by base backup,\n"+
		"  the old data directories are kept until you delete them (--delete-old, now or later)\n",
		dir, plan.From, plan.To, plan.ToVersion, o.to, how, orNone(plan.Readers))
	if o.dryRun {
		fmt.Fprintln(a.Stderr, "dry run: nothing was changed")
		return nil
	}
	if err := a.Confirm(fmt.Sprintf("upgrade the twin in %s to PostgreSQL %d?", dir, plan.To)); err != nil {
		return err
	}
	if _, err := twin.Down(ctx, dir); err != nil {
		return err
	}
	res, err := twin.UpgradeData(ctx, twin.MajorUpgrade{StateDir: dir, Config: target, Link: o.link, Progress: a.Stderr, Plan: &plan})
	if err != nil {
		return err
	}
	st, err := twin.Up(ctx, twin.Options{Config: target, StateDir: dir, Progress: a.Stderr, Log: a.Log, Verbose: a.Verbose})
	if err != nil {
		return fmt.Errorf("%w; the old data directories are kept: %s", err, strings.Join(res.Kept, ", "))
	}
	if major, _, _ := strings.Cut(st.ServerVersion, "."); major != strconv.Itoa(plan.To) {
		return fmt.Errorf("the upgraded twin runs PostgreSQL %s, not %d; the old data directories are kept: %s", st.ServerVersion, plan.To, strings.Join(res.Kept, ", "))
	}
	fmt.Fprintf(a.Stderr, "the twin in %s runs PostgreSQL %s\n", dir, st.ServerVersion)
	if o.deleteOld {
		if err := t.deleteOldData(); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(a.Stderr, "the old data directories are kept: %s\n"+
			"once the upgraded twin is checked, delete them with: apgstack upgrade --engine-version %s --delete-old\n",
			strings.Join(res.Kept, ", "), o.to)
	}
	fmt.Fprintf(a.Stderr, "set database.engineVersion: %s in apgstack.yaml so that the configuration agrees\n", o.to)
	return printUp(a, st, t.json, false)
}

// resumeMajor finishes a major upgrade a crash interrupted once its upgraded cluster was
// complete (or discards a stale one and upgrades again), then starts the twin.
func (t *localTarget) resumeMajor(ctx context.Context, target apgstack.Config, o localUpgradeOptions) error {
	a, dir := t.a, t.dir
	fmt.Fprintf(a.Stderr, "a major upgrade of the twin in %s was interrupted: finishing it\n", dir)
	if o.dryRun {
		fmt.Fprintln(a.Stderr, "dry run: nothing was changed")
		return nil
	}
	if err := a.Confirm(fmt.Sprintf("stop the twin in %s and finish its upgrade?", dir)); err != nil {
		return err
	}
	if _, err := twin.Down(ctx, dir); err != nil {
		return err
	}
	res, err := twin.UpgradeData(ctx, twin.MajorUpgrade{StateDir: dir, Config: target, Link: o.link, Progress: a.Stderr})
	if err != nil {
		return err
	}
	st, err := twin.Up(ctx, twin.Options{Config: target, StateDir: dir, Progress: a.Stderr, Log: a.Log, Verbose: a.Verbose})
	if err != nil {
		return err
	}
	fmt.Fprintf(a.Stderr, "the twin in %s runs PostgreSQL %s; old data directories kept: %s\n", dir, st.ServerVersion, orNone(res.Kept))
	return printUp(a, st, t.json, false)
}

// deleteOldData deletes, after confirmation, what a major upgrade kept.
func (t *localTarget) deleteOldData() error {
	old, err := twin.OldData(t.dir)
	if err != nil {
		return err
	}
	if len(old) == 0 {
		fmt.Fprintf(t.a.Stderr, "no old data directory to delete in %s\n", t.dir)
		return nil
	}
	if err := t.a.Confirm(fmt.Sprintf("delete the old data directories %s?", strings.Join(old, ", "))); err != nil {
		return err
	}
	deleted, err := twin.DeleteOldData(t.dir)
	for _, d := range deleted {
		fmt.Fprintf(t.a.Stderr, "deleted %s\n", d)
	}
	return err
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "(none)"
	}
	return strings.Join(names, ", ")
}
