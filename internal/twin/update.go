package twin

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/bestpractice"
	"github.com/apgstack/apgstack/internal/bootstrap"
	"github.com/apgstack/apgstack/internal/twin/secretstore"
	"github.com/apgstack/apgstack/internal/twin/statedir"
	"github.com/apgstack/apgstack/internal/twin/supervisor"
)

// A twin records the configuration it runs with (config.json in its state directory): its
// identity (stack name, stage, ports, secret names) for every command that addresses it by its
// state directory, and the baseline `up` compares a changed configuration with.

// Exists reports whether stateDir holds a twin: its marker, or the record of a twin made before
// markers.
func Exists(stateDir string) bool {
	if statedir.Has(stateDir) {
		return true
	}
	_, err := os.Stat(statedir.Layout{Root: stateDir}.ConfigFile())
	return err == nil
}

// NoTwin is the error of a command addressed to a directory without a twin.
func NoTwin(stateDir string) error {
	return fmt.Errorf("%w in %s (apgstack up creates one)", ErrNoTwin, stateDir)
}

// Recorded returns the configuration the twin in stateDir last started with; ok is false when
// it has none (a twin never started).
func Recorded(stateDir string) (cfg apgstack.Config, ok bool, err error) {
	data, err := os.ReadFile(statedir.Layout{Root: stateDir}.ConfigFile())
	if errors.Is(err, os.ErrNotExist) {
		return cfg, false, nil
	}
	if err != nil {
		return cfg, false, fmt.Errorf("the twin's recorded configuration: %w", err)
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return cfg, false, fmt.Errorf("the twin's recorded configuration %s is damaged: %w", statedir.Layout{Root: stateDir}.ConfigFile(), err)
	}
	return cfg, true, nil
}

// Pending lists the changes of next that the twin in stateDir does not run with yet (fields the
// twin realizes only).
func Pending(recorded, next apgstack.Config) []Step {
	var out []Step
	for _, s := range PlanUpdate(recorded, next).Steps {
		if s.Effect != NoEffect {
			out = append(out, s)
		}
	}
	return out
}

// secretNames lists the master's and the application roles' secret names under base.
func secretNames(cfg apgstack.Config) []string {
	base := bestpractice.SecretName(cfg.Environment.Stage, cfg.Database.StackName)
	owner, rw, ro := bootstrap.RoleNames(cfg.Database.SchemaName())
	return []string{base, base + "/" + owner, base + "/" + rw, base + "/" + ro}
}

// PrepareUpdate does, with the twin stopped, what must precede its start with next: the secrets
// move to their new names holding the passwords the server accepts (no lockout; the old ones stay
// until Finish), and the readers go when the new stage has none. It returns what it did.
func PrepareUpdate(recorded, next apgstack.Config, stateDir string, plan Plan) (done []string, err error) {
	if plan.RenamesSecrets() {
		store, err := secretstore.Open(statedir.Layout{Root: stateDir}.SecretsDir())
		if err != nil {
			return done, err
		}
		from, to := secretNames(recorded), secretNames(next)
		for i := range from {
			if from[i] == to[i] || !store.Exists(from[i]) {
				continue
			}
			d, err := store.GetDatabase(from[i], secretstore.Current)
			if err != nil {
				return done, fmt.Errorf("secret %s: %w", from[i], err)
			}
			d.Port = next.Database.Port
			if err := carry(store, to[i], d); err != nil {
				return done, err
			}
			done = append(done, fmt.Sprintf("secret %s carried over to %s", from[i], to[i]))
		}
	}
	if len(plan.with(RemoveReader)) > 0 {
		removed, err := supervisor.RemoveReaders(recorded, stateDir)
		if err != nil {
			return done, err
		}
		for _, r := range removed {
			done = append(done, "reader "+r+" removed")
		}
	}
	return done, nil
}

// carry makes d the AWSCURRENT version of the secret name: a new secret, or a new version of an
// existing one (a name the twin had before, whose password may be out of date).
func carry(store *secretstore.Store, name string, d secretstore.DatabaseSecret) error {
	if !store.Exists(name) {
		return store.CreateDatabase(name, d)
	}
	value, err := json.Marshal(d)
	if err != nil {
		return err
	}
	id, err := store.PutPending(name, string(value))
	if err != nil {
		return err
	}
	return store.Promote(name, id)
}

// FinishUpdate removes what the update left behind once the twin runs with next: the secrets
// under their old names (only after the new ones have worked).
func FinishUpdate(recorded, next apgstack.Config, stateDir string) error {
	from, to := secretNames(recorded), secretNames(next)
	dir := statedir.Layout{Root: stateDir}.SecretsDir()
	for i := range from {
		if from[i] == to[i] {
			continue
		}
		if err := os.Remove(secretstore.PathIn(dir, from[i])); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove the old secret %s: %w", from[i], err)
		}
	}
	return nil
}
