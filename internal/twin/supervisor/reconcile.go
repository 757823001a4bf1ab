package supervisor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// reconcile compares, before anything starts, the roles state.json records with what the data
// directories say, and trusts the data: a supervisor killed in the middle of a failover may have
// promoted a reader without recording it, or recorded a promotion whose old writer never became a
// reader. A data directory without standby.signal is a writer's; of two, the one on the later
// timeline (the promoted one) stays the writer and the other rejoins as a reader (pg_rewind), so
// that two writers never run. What was corrected is reported.
func (s *Supervisor) reconcile(ctx context.Context) error {
	type claim struct {
		name     string
		timeline int
	}
	var writers []claim
	for _, in := range s.topo.now().state.Instances {
		i := s.newInstance(in)
		if !i.Initialized() || i.StandbySignal() {
			continue
		}
		tl, err := s.dataTimeline(ctx, in)
		if err != nil {
			s.log.Warn("reconcile: read the data's timeline", "instance", in.Name, "err", err)
			continue
		}
		writers = append(writers, claim{in.Name, tl})
	}
	if len(writers) == 0 {
		return nil
	}
	recorded := s.topo.now().writer().Name
	best := writers[0]
	for _, c := range writers[1:] {
		if c.timeline > best.timeline || c.timeline == best.timeline && c.name == recorded {
			best = c
		}
	}
	var rejoin []string
	for _, c := range writers {
		if c.name != best.name {
			rejoin = append(rejoin, c.name)
		}
	}
	if best.name == recorded && len(rejoin) == 0 {
		return nil
	}
	// The rejoins first: a crash in between leaves the old roles, and the next start decides again.
	for _, name := range rejoin {
		if err := s.markRejoin(name, true); err != nil {
			return err
		}
	}
	if err := s.recordWriterFromData(best.name); err != nil {
		return err
	}
	msg := fmt.Sprintf("state.json recorded %s as the writer; the data says %s (timeline %d) is", recorded, best.name, best.timeline)
	if len(rejoin) > 0 {
		msg += fmt.Sprintf(": %s rejoins as a reader (pg_rewind), so that one writer runs", strings.Join(rejoin, ", "))
	}
	s.progress("%s", msg)
	s.clusterEvent("notification", "recovered roles: %s", msg)
	return nil
}

// dataTimeline is the timeline a data directory is on: pg_control's, or later when a promotion's
// history file shows it (pg_control's timeline moves only at the checkpoint after the promotion,
// which a server killed at once never wrote).
func (s *Supervisor) dataTimeline(ctx context.Context, in InstanceState) (int, error) {
	i := s.newInstance(in)
	cd, err := i.ControlData(ctx)
	if err != nil {
		return 0, err
	}
	tl := cd.Timeline
	entries, err := os.ReadDir(filepath.Join(i.DataDir(), "pg_wal"))
	if err != nil {
		return tl, nil
	}
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".history"); ok && len(name) == 8 {
			if n, err := strconv.ParseInt(name, 16, 32); err == nil && int(n) > tl {
				tl = int(n)
			}
		}
	}
	return tl, nil
}
