package backup

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// Set is one backup in the repository.
type Set struct {
	Label string    `json:"label"`
	Type  string    `json:"type"` // full, diff, incr
	Start time.Time `json:"start"`
	Stop  time.Time `json:"stop"`
	// Size is the database size backed up; RepoSize what the set takes in the repository
	// (compressed, encrypted).
	Size        int64             `json:"size"`
	RepoSize    int64             `json:"repoSize"`
	Prior       string            `json:"prior,omitempty"`
	WALStart    string            `json:"walStart,omitempty"`
	WALStop     string            `json:"walStop,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Error       bool              `json:"error,omitempty"`
}

// Info is the repository's view of the stanza.
type Info struct {
	Stanza string `json:"stanza"`
	// Status is pgBackRest's status message ("ok" when healthy).
	Status     string `json:"status"`
	StatusCode int    `json:"statusCode"`
	Cipher     string `json:"cipher"`
	Backups    []Set  `json:"backups"`
	// WALMin and WALMax are the oldest and newest archived WAL segments.
	WALMin string `json:"walMin,omitempty"`
	WALMax string `json:"walMax,omitempty"`
}

// EarliestRestorable is the oldest moment a point-in-time restore can reach: the end of the
// oldest backup, to the second pgBackRest reports (a moment earlier in that second than the
// backup's true end is refused by PostgreSQL at recovery), zero with no backup.
func (i Info) EarliestRestorable() time.Time {
	for _, b := range i.Backups {
		if !b.Error {
			return b.Stop
		}
	}
	return time.Time{}
}

// Info reads the repository (pgbackrest info --output=json).
func (r *Repo) Info(ctx context.Context) (Info, error) {
	out, err := r.run(ctx, "info", "--output=json")
	if err != nil {
		return Info{}, err
	}
	infos, err := ParseInfo(out)
	if err != nil {
		return Info{}, err
	}
	for _, i := range infos {
		if i.Stanza == r.cfg.Stanza {
			return i, nil
		}
	}
	return Info{}, fmt.Errorf("backup: stanza %s not in the repository", r.cfg.Stanza)
}

// rawInfo is the subset of `pgbackrest info --output=json` read here.
type rawInfo struct {
	Name    string `json:"name"`
	Cipher  string `json:"cipher"`
	Archive []struct {
		Min string `json:"min"`
		Max string `json:"max"`
	} `json:"archive"`
	Backup []struct {
		Label      string            `json:"label"`
		Type       string            `json:"type"`
		Prior      *string           `json:"prior"`
		Error      bool              `json:"error"`
		Annotation map[string]string `json:"annotation"`
		Archive    struct {
			Start string `json:"start"`
			Stop  string `json:"stop"`
		} `json:"archive"`
		Info struct {
			Size       int64 `json:"size"`
			Repository struct {
				Size int64 `json:"size"`
			} `json:"repository"`
		} `json:"info"`
		Timestamp struct {
			Start int64 `json:"start"`
			Stop  int64 `json:"stop"`
		} `json:"timestamp"`
	} `json:"backup"`
	Status struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"status"`
}

// ParseInfo parses pgBackRest's JSON info output; backups come oldest first.
func ParseInfo(data []byte) ([]Info, error) {
	var raw []rawInfo
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("backup: parse pgbackrest info: %w", err)
	}
	out := make([]Info, 0, len(raw))
	for _, s := range raw {
		i := Info{Stanza: s.Name, Status: s.Status.Message, StatusCode: s.Status.Code, Cipher: s.Cipher}
		for _, a := range s.Archive {
			if i.WALMin == "" || a.Min < i.WALMin {
				i.WALMin = a.Min
			}
			if a.Max > i.WALMax {
				i.WALMax = a.Max
			}
		}
		for _, b := range s.Backup {
			set := Set{Label: b.Label, Type: b.Type, Start: time.Unix(b.Timestamp.Start, 0).UTC(), Stop: time.Unix(b.Timestamp.Stop, 0).UTC(),
				Size: b.Info.Size, RepoSize: b.Info.Repository.Size, WALStart: b.Archive.Start, WALStop: b.Archive.Stop,
				Annotations: b.Annotation, Error: b.Error}
			if b.Prior != nil {
				set.Prior = *b.Prior
			}
			i.Backups = append(i.Backups, set)
		}
		sort.SliceStable(i.Backups, func(a, b int) bool { return i.Backups[a].Start.Before(i.Backups[b].Start) })
		out = append(out, i)
	}
	return out, nil
}
