package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/internal/twin"
	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/statedir"
)

// localTarget realizes the database stack as a twin on this machine. It speaks to the running
// supervisor only through its API client.
type localTarget struct {
	invocation
	flag string // --state-dir as given
	dir  string // the state directory, resolved
}

func newLocalTarget(inv invocation, lf localFlags) (*localTarget, error) {
	dir, err := twin.StateDir(inv.cfg, lf.stateDir)
	if err != nil {
		return nil, Exit(ExitUsage, err)
	}
	return &localTarget{invocation: inv, flag: lf.stateDir, dir: dir}, nil
}

// existing makes the target address the twin recorded in its state directory: a command given
// only --state-dir finds the twin's own stack name, ports, stage and secret names. Where the
// configuration differs from what the twin runs with, it says so (`up` applies the changes). In a
// directory without a twin it fails without creating anything.
func (t *localTarget) existing() error {
	if !twin.Exists(t.dir) {
		return twin.NoTwin(t.dir)
	}
	rec, ok, err := twin.Recorded(t.dir)
	if err != nil || !ok {
		return err
	}
	if pending := twin.Pending(rec, t.cfg); len(pending) > 0 {
		fmt.Fprintf(t.a.Stderr, "note: the configuration has changes the twin in %s does not run with yet (`apgstack up` applies them):\n", t.dir)
		for _, s := range pending {
			fmt.Fprintf(t.a.Stderr, "  %s\n", s.Change)
		}
	}
	t.cfg = rec
	return nil
}

// client is the running supervisor's API client.
func (t *localTarget) client() *api.Client { return twin.Client(t.dir) }

// notRunning turns "no supervisor" into what to do about it.
func (t *localTarget) notRunning(err error) error {
	if errors.Is(err, api.ErrNotRunning) {
		return fmt.Errorf("the local twin in %s is not running: start it with `apgstack up`: %w", t.dir, err)
	}
	return err
}

func (t *localTarget) Up(ctx context.Context, o UpOptions) error {
	a, cfg := t.a, t.cfg
	dir, note, err := twin.PlaceStateDir(cfg, t.flag)
	if err != nil {
		return err
	}
	if note != "" {
		fmt.Fprintln(a.Stderr, "note:", note)
	}
	printAdvice(a, cfg)
	if twin.PendingMajorUpgrade(dir) {
		fmt.Fprintln(a.Stderr, "note: a major upgrade of this twin was interrupted: `apgstack upgrade --engine-version X` finishes it")
	}
	for _, n := range cfg.TwinNotes() {
		fmt.Fprintln(a.Stderr, "note:", n)
	}
	strict := o.Strict || cfg.Target.Local.StrictVersion
	opts := twin.Options{Config: cfg, StateDir: dir, Strict: strict, Progress: a.Stderr, Log: a.Log, Verbose: a.Verbose}
	if err := statedir.CheckClaimable(dir); err != nil {
		return err
	}
	rec, recorded, err := twin.Recorded(dir)
	if err != nil {
		return err
	}
	if recorded {
		if plan := twin.PlanUpdate(rec, cfg); !plan.Empty() {
			return t.update(ctx, opts, rec, plan, o)
		}
	}
	if o.DryRun {
		fmt.Fprintf(a.Stderr, "dry run: the twin in %s already runs with this configuration; nothing to change\n", dir)
		if !recorded {
			fmt.Fprintf(a.Stderr, "dry run: there is no twin in %s yet; up creates one\n", dir)
		}
		return nil
	}
	if o.Foreground {
		if err := statedir.CheckClaimable(dir); err != nil {
			return err
		}
		if _, err := twin.Check(ctx, cfg, dir, strict); err != nil {
			return err
		}
		return twin.Supervise(ctx, opts, nil, func(st api.Status) {
			_ = printUp(a, st, t.json, true)
			fmt.Fprintln(a.Stderr, "running in the foreground; Ctrl-C or `apgstack down` stops it")
		})
	}
	st, err := twin.Up(ctx, opts)
	if err != nil {
		return err
	}
	return printUp(a, st, t.json, false)
}

// update brings an existing twin to a changed configuration, as a stack update does: the plan
// first (each changed field, old -> new, and what it does), refusals before anything is touched,
// then, after confirmation, a restart with the new configuration that never leaves the user
// without a working login (the secrets move with their passwords; the old ones go only once the
// twin runs).
func (t *localTarget) update(ctx context.Context, opts twin.Options, rec apgstack.Config, plan twin.Plan, o UpOptions) error {
	a, dir := t.a, opts.StateDir
	fmt.Fprintf(a.Stderr, "the twin in %s runs with another configuration; the plan:\n%s", dir, plan)
	if refused := plan.Refusals(); len(refused) > 0 {
		return Usagef("nothing was changed: %d change(s) cannot be applied to the existing twin (the plan above says what to do instead)", len(refused))
	}
	if o.DryRun {
		fmt.Fprintln(a.Stderr, "dry run: nothing was changed")
		return nil
	}
	if o.Foreground {
		return Usagef("--foreground: apply the changes with `apgstack up` first, then run in the foreground")
	}
	// What the running servers take as they are (a dynamic parameter; a static one left
	// pending-reboot) needs no restart and no confirmation, as an RDS parameter group change.
	if plan.Online() {
		if st, err := twin.Running(ctx, dir); err == nil {
			res, err := twin.Client(dir).Reconfigure(ctx, opts.Config)
			if err != nil {
				return remoteExit(err)
			}
			for _, c := range res.Applied {
				fmt.Fprintf(a.Stderr, "applied online: %s\n", c)
			}
			for _, c := range res.PendingReboot {
				fmt.Fprintf(a.Stderr, "pending-reboot: %s (`apgstack reboot` applies it)\n", c)
			}
			return printUp(a, st, t.json, false)
		}
	}
	if err := a.Confirm(fmt.Sprintf("apply the plan to the twin in %s? its instances restart", dir)); err != nil {
		return err
	}
	if _, err := twin.Down(ctx, dir); err != nil {
		return err
	}
	done, err := twin.PrepareUpdate(rec, opts.Config, dir, plan)
	for _, d := range done {
		fmt.Fprintln(a.Stderr, d)
	}
	if err != nil {
		return fmt.Errorf("%w; nothing was lost: run apgstack up again", err)
	}
	st, err := twin.Up(ctx, opts)
	if err != nil {
		return err
	}
	if err := twin.FinishUpdate(rec, opts.Config, dir); err != nil {
		return err
	}
	fmt.Fprintln(a.Stderr, "the plan is applied")
	return printUp(a, st, t.json, false)
}

func (t *localTarget) Down(ctx context.Context, o DownOptions) error {
	a, dir := t.a, t.dir
	if twin.Exists(dir) {
		if err := t.existing(); err != nil {
			return err
		}
	}
	if o.Delete {
		// Refused before anything is stopped: only a twin's own directory is deleted.
		if err := statedir.CheckRemovable(dir); err != nil {
			return err
		}
		if _, err := os.Stat(dir); err == nil {
			if err := a.Confirm(fmt.Sprintf("delete %s with the cluster's data, secrets and certificates?", dir)); err != nil {
				return err
			}
		}
	}
	if !o.SkipFinalSnapshot {
		if err := t.finalSnapshot(ctx); err != nil {
			return err
		}
	}
	ran, err := twin.Down(ctx, dir)
	if err != nil {
		return err
	}
	if ran {
		fmt.Fprintf(a.Stderr, "stopped the local twin in %s\n", dir)
	} else {
		fmt.Fprintf(a.Stderr, "nothing runs for %s\n", dir)
	}
	if o.Delete {
		if err := twin.RemoveStateDir(t.cfg, t.flag, dir); err != nil {
			return err
		}
		fmt.Fprintf(a.Stderr, "deleted %s\n", dir)
	}
	return nil
}

// finalSnapshot snapshots a running twin before `down` stops it, as the database stack takes a
// final snapshot when the cluster is deleted; nothing running, nothing to snapshot. A failed
// snapshot stops the teardown (as on AWS), naming the way around it.
func (t *localTarget) finalSnapshot(ctx context.Context) error {
	c := t.client()
	if _, err := c.Status(ctx); err != nil {
		return nil
	}
	name := t.cfg.Database.StackName + "-final-" + time.Now().UTC().Format("20060102-150405")
	sn, err := c.CreateSnapshot(ctx, name, "final")
	if err != nil {
		return fmt.Errorf("final snapshot (pass --skip-final-snapshot to stop without one): %w", err)
	}
	fmt.Fprintf(t.a.Stderr, "final snapshot %s taken in %s (database.snapshotName: %s restores it)\n", sn.Name, sn.Dir, sn.Name)
	return nil
}

func (t *localTarget) Status(ctx context.Context) error {
	if err := t.existing(); err != nil {
		return err
	}
	st, err := twin.Status(ctx, t.cfg, t.dir)
	if err != nil {
		return err
	}
	if t.json {
		return t.a.PrintJSON(st)
	}
	printStatus(t.a, st)
	return nil
}

func (t *localTarget) Outputs(ctx context.Context) error {
	if err := t.existing(); err != nil {
		return err
	}
	st, err := twin.Status(ctx, t.cfg, t.dir)
	if err != nil {
		return err
	}
	if t.json {
		return t.a.PrintJSON(st.Outputs)
	}
	printOutputs(t.a.Stdout, st.Outputs)
	return nil
}

func (t *localTarget) PSQL(_ context.Context, reader bool, args []string) error {
	a := t.a
	if err := t.existing(); err != nil {
		return err
	}
	bin, err := twin.PSQLBinary()
	if err != nil {
		return err
	}
	p, err := twin.PSQLEnv(t.cfg, t.dir, reader)
	if err != nil {
		return err
	}
	defer p.Cleanup()
	c := exec.Command(bin, args...)
	c.Stdin, c.Stdout, c.Stderr = a.Stdin, a.Stdout, a.Stderr
	c.Env = append(withoutPG(os.Environ()), p.Env...)
	if err := c.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return Exit(ee.ExitCode(), errors.New("psql failed"))
		}
		return err
	}
	return nil
}

func (t *localTarget) Failover(ctx context.Context, target string) error {
	a := t.a
	if err := t.existing(); err != nil {
		return err
	}
	c := t.client()
	st, err := c.Status(ctx)
	if err != nil {
		return t.notRunning(err)
	}
	if target != "" {
		var readers []string
		for _, in := range st.Instances {
			if in.Role == api.RoleReader {
				readers = append(readers, in.Name)
			}
		}
		if !slices.Contains(readers, target) {
			list := "none"
			if len(readers) > 0 {
				list = strings.Join(readers, ", ")
			}
			return Usagef("--target-instance %q: not a reader of this cluster (readers: %s)", target, list)
		}
	}
	if err := a.Confirm(fmt.Sprintf("fail the writer of %s over? open sessions on it are cut", t.dir)); err != nil {
		return err
	}
	fmt.Fprintln(a.Stderr, "switching over ...")
	res, err := c.Failover(ctx, target)
	if err != nil {
		return remoteExit(err)
	}
	if t.json {
		return a.PrintJSON(res)
	}
	w := a.Stdout
	if res.NewWriter == res.OldWriter {
		fmt.Fprintf(w, "writer %s restarted in place (no reader to promote)\n", res.OldWriter)
	} else {
		fmt.Fprintf(w, "%s is the writer now (was %s)", res.NewWriter, res.OldWriter)
		if res.WriterLSN != "" {
			fmt.Fprintf(w, "; it replayed the old writer's WAL up to %s before promotion", res.WriterLSN)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "new connections held for %s; done in %s\n", res.Paused.Round(time.Millisecond), res.Duration.Round(time.Millisecond))
	if res.Rejoined && res.NewWriter != res.OldWriter {
		fmt.Fprintf(w, "%s runs as a reader\n", res.OldWriter)
	}
	if res.Warning != "" {
		fmt.Fprintln(a.Stderr, "warning:", res.Warning)
	}
	return nil
}

func (t *localTarget) RotateSecret(ctx context.Context, role string) error {
	a := t.a
	if err := t.existing(); err != nil {
		return err
	}
	res, err := t.client().RotateSecret(ctx, role)
	if err != nil {
		return remoteExit(t.notRunning(err))
	}
	failed := 0
	for _, r := range res {
		if r.Error != "" {
			failed++
		}
	}
	if t.json {
		if err := a.PrintJSON(res); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ROLE\tSECRET\tUSER\tAWSCURRENT\tTOOK")
		for _, r := range res {
			if r.Error != "" {
				fmt.Fprintf(tw, "%s\t%s\t\tfailed\t\n", r.Role, r.Secret)
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Role, r.Secret, r.Username, r.VersionID, r.Duration.Round(time.Millisecond))
		}
		tw.Flush()
	}
	for _, r := range res {
		if r.Error != "" {
			fmt.Fprintf(a.Stderr, "error: %s\n", r.Error)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d rotations failed; their AWSCURRENT versions still work", failed, len(res))
	}
	return nil
}

// remoteExit makes a request the supervisor refused as asked (400, 409) a usage error (exit 2).
func remoteExit(err error) error {
	var re *api.RemoteError
	if errors.As(err, &re) && re.BadRequest() {
		return Exit(ExitUsage, err)
	}
	return err
}
