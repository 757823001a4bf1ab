package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/internal/twin"
	"github.com/apgstack/apgstack/internal/twin/api"
)

// eventFilter is what `apgstack events` keeps.
type eventFilter struct {
	since      string
	sourceType string
	sourceID   string
	category   string
}

// check refuses bad filters, naming the value and what is allowed, and returns the cut-off time.
func (f eventFilter) check(now time.Time) (time.Time, error) {
	var cutoff time.Time
	if f.since != "" {
		if d, err := time.ParseDuration(f.since); err == nil && d >= 0 {
			cutoff = now.Add(-d)
		} else if t, err := time.Parse(time.RFC3339, f.since); err == nil {
			cutoff = t
		} else {
			return cutoff, Usagef("--since %q: a duration such as 90m or 24h, or an RFC 3339 time such as 2026-11-25T14:00:00Z", f.since)
		}
	}
	if f.sourceType != "" && !slices.Contains(bestpractice.EventSourceTypes(), f.sourceType) {
		return cutoff, Usagef("--source-type %q: allowed values are %s", f.sourceType, strings.Join(bestpractice.EventSourceTypes(), ", "))
	}
	if f.category != "" {
		allowed := eventCategories(f.sourceType)
		if !slices.Contains(allowed, f.category) {
			of := "any source type"
			if f.sourceType != "" {
				of = f.sourceType
			}
			return cutoff, Usagef("--category %q: allowed values for %s are %s", f.category, of, strings.Join(allowed, ", "))
		}
	}
	return cutoff, nil
}

// eventCategories are the subscribed categories of a source type, or of all of them.
func eventCategories(sourceType string) []string {
	if sourceType != "" {
		return bestpractice.EventCategories[sourceType]
	}
	var all []string
	for _, cats := range bestpractice.EventCategories {
		for _, c := range cats {
			if !slices.Contains(all, c) {
				all = append(all, c)
			}
		}
	}
	sort.Strings(all)
	return all
}

func (f eventFilter) keep(ev api.Event, cutoff time.Time) bool {
	return (cutoff.IsZero() || !ev.Time.Before(cutoff)) &&
		(f.sourceType == "" || ev.SourceType == f.sourceType) &&
		(f.sourceID == "" || ev.SourceID == f.sourceID) &&
		(f.category == "" || ev.Category == f.category)
}

func newEventsCmd(a *App) *cobra.Command {
	var lf localFlags
	var f eventFilter
	var follow bool
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Show the local twin's events (availability, failover, failure, configuration change, ...)",
		Long: `Show the events of the local twin, oldest first, from its append-only event log in the
state directory: the categories the database stack's RDS event subscriptions carry, per source type
(db-cluster: failover, failure, notification; db-instance: availability, configuration change,
deletion, failover, failure, maintenance, notification, recovery; db-parameter-group:
configuration change). Alarm transitions and backups are cluster notifications.

The log is read directly, so events are shown whether the supervisor runs or not.`,
		Example: `  apgstack events --since 1h
  apgstack events --source-type db-instance --category failover --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := a.JSON()
			if err != nil {
				return err
			}
			cutoff, err := f.check(time.Now())
			if err != nil {
				return err
			}
			inv, err := a.invoke(cmd)
			if err != nil {
				return err
			}
			if inv.cfg.Target.Kind == apgstack.TargetAWS {
				return Usagef("target aws: events come from the RDS event subscriptions (SNS topic); apgstack events reads the local twin's log")
			}
			t, err := newLocalTarget(inv, lf)
			if err != nil {
				return err
			}
			if err := t.existing(); err != nil {
				return err
			}
			all, err := twin.ReadEvents(t.dir)
			if err != nil {
				return Exit(ExitFailure, err)
			}
			out := []api.Event{}
			for _, ev := range all {
				if f.keep(ev, cutoff) {
					out = append(out, ev)
				}
			}
			if follow {
				return followEvents(cmd.Context(), a, t.dir, f, cutoff, asJSON)
			}
			if asJSON {
				return a.PrintJSON(out)
			}
			printEvents(a, out)
			return nil
		},
	}
	lf.add(cmd)
	fl := cmd.Flags()
	fl.BoolVarP(&follow, "follow", "f", false, "print events as they happen (one JSON object a line with -o json), until interrupted")
	fl.StringVar(&f.since, "since", "", "only events newer than this: a duration (90m, 24h) or an RFC 3339 time")
	fl.StringVar(&f.sourceType, "source-type", "", "only this source type: "+strings.Join(bestpractice.EventSourceTypes(), ", "))
	fl.StringVar(&f.sourceID, "source-id", "", "only this source (instance1, the cluster's or parameter group's name)")
	fl.StringVar(&f.category, "category", "", "only this category: "+strings.Join(eventCategories(""), ", "))
	_ = cmd.RegisterFlagCompletionFunc("source-type", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return bestpractice.EventSourceTypes(), cobra.ShellCompDirectiveNoFileComp
	})
	_ = cmd.RegisterFlagCompletionFunc("category", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return eventCategories(f.sourceType), cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

func printEvents(a *App, events []api.Event) {
	if len(events) == 0 {
		fmt.Fprintln(a.Stderr, "no events")
		return
	}
	tw := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tSOURCE TYPE\tSOURCE\tCATEGORY\tMESSAGE")
	for _, ev := range events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ev.Time.UTC().Format(time.RFC3339), ev.SourceType, ev.SourceID, ev.Category, ev.Message)
	}
	tw.Flush()
}

// followEvents prints the events that match, the ones already logged first, then each new one as
// it is appended, until ctx ends. In JSON each event is one line (a JSON Lines stream).
func followEvents(ctx context.Context, a *App, dir string, f eventFilter, cutoff time.Time, asJSON bool) error {
	print := func(evs []api.Event) {
		for _, ev := range evs {
			if !f.keep(ev, cutoff) {
				continue
			}
			if asJSON {
				line, _ := json.Marshal(ev)
				fmt.Fprintln(a.Stdout, string(line))
				continue
			}
			fmt.Fprintf(a.Stdout, "%s  %s  %s  %s  %s\n", ev.Time.UTC().Format(time.RFC3339), ev.SourceType, ev.SourceID, ev.Category, ev.Message)
		}
	}
	all, err := twin.ReadEvents(dir)
	if err != nil {
		return err
	}
	print(all)
	seen := len(all)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(300 * time.Millisecond):
		}
		all, err := twin.ReadEvents(dir)
		if err != nil {
			return err
		}
		if len(all) > seen {
			print(all[seen:])
			seen = len(all)
		}
	}
}
