package cli

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/internal/twin"
	"github.com/apgstack/apgstack/internal/twin/api"
	"github.com/apgstack/apgstack/internal/twin/statedir"
)

func newRestoreCmd(a *App) *cobra.Command {
	var lf localFlags
	var toTime, name, newDir string
	var port, readerPort int
	var noStart bool
	cmd := &cobra.Command{
		Use:   "restore --to-time TIME --name NEW",
		Short: "Create a new local twin from this one's backups as it was at a moment (point-in-time restore)",
		Long: `Create a new cluster holding this twin's data as it was at --to-time, as Aurora's restore to a
point in time does: the backups and archived WAL in this twin's repository are restored into a new
state directory (default <state-dir>-<NEW>), the new cluster recovers to the moment, is promoted
and comes up under the name NEW on its own ports. This twin is not touched and may keep running.

--to-time is an RFC 3339 time (2026-11-25T14:30:00Z) within the retention window ("apgstack backup
list" shows it), or "latest".`,
		Example: `  apgstack restore --to-time 2026-11-25T14:30:00Z --name before-migration
  apgstack restore --to-time latest --name copy --port 6432`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := a.JSON()
			if err != nil {
				return err
			}
			if name == "" {
				return Usagef("--name is required: the new cluster's name (database.stackName of the restored twin)")
			}
			if !apgstack.StackNamePattern.MatchString(name) || len(name) > 128 {
				return Usagef("--name %q: a letter, then letters, digits and '-', 128 characters at most (it becomes the restored cluster's database.stackName)", name)
			}
			if toTime == "" {
				return Usagef(`--to-time is required: an RFC 3339 time such as 2026-11-25T14:30:00Z, or "latest"`)
			}
			var at time.Time
			if toTime != "latest" {
				if at, err = time.Parse(time.RFC3339Nano, toTime); err != nil {
					return Usagef(`--to-time %q: an RFC 3339 time such as 2026-11-25T14:30:00Z, or "latest"`, toTime)
				}
				if at.After(time.Now()) {
					return Usagef("--to-time %s is in the future", toTime)
				}
			}
			for flag, p := range map[string]int{"--port": port, "--reader-port": readerPort} {
				if p < 0 || p > 65535 {
					return Usagef("%s %d: 1150..65535 allowed (0 picks a free port)", flag, p)
				}
			}
			t, err := a.localTwin(cmd, lf, "restore")
			if err != nil {
				return err
			}
			cfg, dir := t.cfg, t.dir
			ncfg := cfg
			if err := ncfg.Set("database.stackName", name); err != nil {
				return Usagef("--name %q: %v", name, err)
			}
			ncfg.Database.SnapshotName = ""
			if port == 0 {
				if port, err = freeLoopbackPort(); err != nil {
					return err
				}
			}
			if readerPort == 0 {
				if readerPort, err = freeLoopbackPort(); err != nil {
					return err
				}
			}
			ncfg.Database.Port, ncfg.Target.Local.ReaderPort = port, readerPort
			if err := ncfg.Validate(); err != nil {
				return Usagef("the restored cluster's configuration (--name, --port, --reader-port): %v", err)
			}
			if newDir == "" {
				newDir = dir + "-" + name
			}
			if entries, err := os.ReadDir(newDir); err == nil && len(entries) > 0 {
				return Usagef("--new-state-dir %s exists and is not empty: choose another --name or --new-state-dir", newDir)
			}
			if err := statedir.CheckClaimable(newDir); err != nil {
				return err
			}
			ctx := cmd.Context()
			// A running source archives its current WAL first, so that every moment up to now
			// is in the repository.
			err = t.client().ArchiveNow(ctx)
			if err != nil && !errors.Is(err, api.ErrNotRunning) {
				return err
			}
			// The window is checked before anything is said or made: a moment outside it is bad
			// input (exit 2), named with the window.
			info, err := twin.Backups(ctx, cfg, dir)
			if err != nil {
				return err
			}
			earliest := info.EarliestRestorable()
			switch {
			case earliest.IsZero():
				return Usagef("the twin in %s has no backup yet, so there is nothing to restore from: take one with `apgstack backup`", dir)
			case !at.IsZero() && at.Before(earliest):
				return Usagef("--to-time %s: outside the recoverable window %s .. now", at.UTC().Format(time.RFC3339), earliest.UTC().Format(time.RFC3339))
			}
			moment := "the end of the archived WAL"
			if !at.IsZero() {
				moment = at.Format(time.RFC3339Nano)
			}
			fmt.Fprintf(a.Stderr, "restoring %s (%s) to %s into %s\n", cfg.Database.StackName, dir, moment, newDir)
			if _, err := twin.RestoreToTime(ctx, twin.RestoreRequest{Config: cfg, SourceDir: dir, TargetDir: newDir, TargetConfig: &ncfg, Time: at}); err != nil {
				return err
			}
			restart := fmt.Sprintf("apgstack up --state-dir %s --set database.stackName=%s --set database.port=%d --set target.local.readerPort=%d",
				newDir, name, port, readerPort)
			if noStart {
				fmt.Fprintf(a.Stderr, "restored; start the new cluster with:\n  %s\n", restart)
				return nil
			}
			st, err := twin.Up(ctx, twin.Options{Config: ncfg, StateDir: newDir, Strict: cfg.Target.Local.StrictVersion, Progress: a.Stderr, Log: a.Log, Verbose: a.Verbose})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Stderr, "the restored cluster %s runs; its commands take --state-dir %s, and a restart needs its own settings:\n  %s\n",
				name, newDir, restart)
			return printUp(a, st, asJSON, false)
		},
	}
	lf.add(cmd)
	f := cmd.Flags()
	f.StringVar(&toTime, "to-time", "", `the moment to restore to (RFC 3339), or "latest"`)
	a.completeBackupTimes(cmd, "to-time")
	f.StringVar(&name, "name", "", "the new cluster's name")
	f.StringVar(&newDir, "new-state-dir", "", "the new cluster's state directory (default <state-dir>-<name>)")
	f.IntVar(&port, "port", 0, "the new cluster's writer endpoint port (default: a free port)")
	f.IntVar(&readerPort, "reader-port", 0, "the new cluster's reader endpoint port (default: a free port)")
	f.BoolVar(&noStart, "no-start", false, "restore the data only; print the command that starts the new cluster")
	return cmd
}

func freeLoopbackPort() (int, error) {
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free port: %w", err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if p >= 1150 { // DBPort's allowed range
			return p, nil
		}
	}
	return 0, errors.New("find a free port: none at or above 1150")
}
