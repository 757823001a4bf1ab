package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/internal/twin"
	"github.com/apgstack/apgstack/internal/twin/api"
)

// Shell completion of flag values and arguments (`apgstack completion bash|zsh|fish`). Fixed
// values come from where they are declared; names that live in a twin (instances, snapshots,
// backups) come from its state directory, the running supervisor answering when it is up.

// completeFixed completes a flag from a declared list.
func completeFixed(cmd *cobra.Command, flag string, values []string) {
	_ = cmd.RegisterFlagCompletionFunc(flag, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
}

// registerGlobalCompletions completes the persistent flags of the root command.
func (a *App) registerGlobalCompletions(root *cobra.Command) {
	completeFixed(root, "target", apgstack.TargetKinds)
	completeFixed(root, "output", outputFormats)
	_ = root.RegisterFlagCompletionFunc("set", a.completeSet)
}

// completeSet completes --set: a field path with its "=", then, for the fields whose values are
// a known list (the target kind, the stage, the engine version, a snapshot to create the twin
// from), the values.
func (a *App) completeSet(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	path, _, hasValue := strings.Cut(toComplete, "=")
	if !hasValue {
		var out []string
		for _, p := range apgstack.FieldPaths() {
			if strings.HasPrefix(p, toComplete) {
				out = append(out, p+"=")
			}
		}
		return out, cobra.ShellCompDirectiveNoSpace | cobra.ShellCompDirectiveNoFileComp
	}
	var values []string
	switch path {
	case "target.kind":
		values = apgstack.TargetKinds
	case "environment.stage":
		values = bestpractice.StageNames
	case "database.engineVersion":
		values = bestpractice.EngineVersions()
	case "database.snapshotName":
		names, _ := a.snapshotNames(cmd, nil, "")
		for _, n := range names {
			name, _, _ := strings.Cut(n, "\t")
			values = append(values, name)
		}
	}
	out := make([]string, 0, len(values))
	for _, v := range values {
		if strings.HasPrefix(path+"="+v, toComplete) {
			out = append(out, path+"="+v)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeStages completes a --stage flag with the best-practice stages.
func completeStages(cmd *cobra.Command) { completeFixed(cmd, "stage", bestpractice.StageNames) }

// twinAt is the configuration and state directory a completion works on: the command's own
// flags (--config, --set, --target, --state-dir) are parsed by then. Errors give no completion.
func (a *App) twinAt(cmd *cobra.Command) (apgstack.Config, string, bool) {
	cfg, err := a.Config(cmd)
	if err != nil || cfg.Target.Kind == apgstack.TargetAWS {
		return cfg, "", false
	}
	flag, _ := cmd.Flags().GetString("state-dir")
	dir, err := twin.StateDir(cfg, flag)
	if err != nil {
		return cfg, "", false
	}
	return cfg, dir, true
}

// completeInstances completes a flag with the twin's instance names (readersOnly: only those a
// failover may promote), from the running supervisor or, when down, its state.
func (a *App) completeInstances(cmd *cobra.Command, flag string, readersOnly bool) {
	_ = cmd.RegisterFlagCompletionFunc(flag, func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		cfg, dir, ok := a.twinAt(cmd)
		if !ok || !twin.Exists(dir) {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		if rec, ok, err := twin.Recorded(dir); err == nil && ok {
			cfg = rec
		}
		st, err := twin.Status(cmd.Context(), cfg, dir)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, in := range st.Instances {
			if !readersOnly || in.Role == api.RoleReader {
				out = append(out, in.Name+"\t"+in.Role)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	})
}

// snapshotNames completes an argument with the snapshots beside the state directory (where the
// snapshot commands find them, see twin.SnapshotHome).
func (a *App) snapshotNames(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	cfg, err := a.Config(cmd)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	flag, _ := cmd.Flags().GetString("state-dir")
	home, err := twin.SnapshotHome(cfg, flag)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	list, err := twin.ListSnapshots(home)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	out := make([]string, 0, len(list))
	for _, s := range list {
		out = append(out, fmt.Sprintf("%s\t%s snapshot of %s, %s", s.Name, s.Kind, s.Cluster, s.Created.Format(time.RFC3339)))
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeBackupTimes completes restore --to-time with "latest" and, for each backup in the
// repository (its label as the description), the second after its end: a moment a restore can
// surely reach (pgBackRest reports the end to the second; earlier in it may be refused).
func (a *App) completeBackupTimes(cmd *cobra.Command, flag string) {
	_ = cmd.RegisterFlagCompletionFunc(flag, func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		out := []string{"latest\tthe newest archived moment"}
		cfg, dir, ok := a.twinAt(cmd)
		if !ok || !twin.Exists(dir) {
			return out, cobra.ShellCompDirectiveNoFileComp
		}
		if rec, ok, err := twin.Recorded(dir); err == nil && ok {
			cfg = rec
		}
		info, err := twin.Backups(cmd.Context(), cfg, dir)
		if err != nil {
			return out, cobra.ShellCompDirectiveNoFileComp
		}
		for i := len(info.Backups) - 1; i >= 0; i-- {
			b := info.Backups[i]
			if !b.Error {
				out = append(out, fmt.Sprintf("%s\tend of %s backup %s", b.Stop.UTC().Truncate(time.Second).Add(time.Second).Format(time.RFC3339), b.Type, b.Label))
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	})
}
