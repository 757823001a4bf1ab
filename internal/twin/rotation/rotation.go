// Package rotation rotates a database secret of the local secret store in the four steps a
// Secrets Manager rotation function takes: createSecret (a new password under AWSPENDING),
// setSecret (the database role gets it), testSecret (a TLS login with it works) and finishSecret
// (AWSPENDING becomes AWSCURRENT, the old current AWSPREVIOUS).
//
// Strategy: each secret rotates its own role in place, the single-user strategy. Aurora rotates
// application roles with the alternating-users strategy as well; locally every role (master,
// owner, read-write, read-only) uses the single-user strategy, because the twin has no clone
// roles. The password is changed by an administrative connection (the supervisor's own superuser
// over the unix socket) rather than by the role itself, so that a step failing after the
// database took the new password can always put the current one back: a failed rotation leaves
// AWSCURRENT working.
//
// Passwords never reach the server in clear text (the statement carries a SCRAM verifier), the
// verifier never reaches the server log (the statement runs with statement logging off; pgaudit
// redacts its own record), and neither reaches errors or logs.
package rotation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apgstack/apgstack/internal/scram"

	"github.com/apgstack/apgstack/internal/twin/postgres"
	"github.com/apgstack/apgstack/internal/twin/secretstore"
	"github.com/jackc/pgx/v5"
)

// Steps of a rotation, named as Secrets Manager names them.
const (
	StepCreate = "createSecret"
	StepSet    = "setSecret"
	StepTest   = "testSecret"
	StepFinish = "finishSecret"
)

// StepError is a failed step. Its message names the secret and the step and never holds a
// password.
type StepError struct {
	Secret string
	Step   string
	// RolledBack reports that the database got the current password back after the step failed.
	RolledBack bool
	msg        string
	err        error
}

func (e *StepError) Error() string {
	s := fmt.Sprintf("rotate secret %s: %s: %s", e.Secret, e.Step, e.msg)
	if e.RolledBack {
		s += " (the database was given the AWSCURRENT password back)"
	}
	return s
}

// Unwrap gives errors.Is/As the cause.
func (e *StepError) Unwrap() error { return e.err }

// Connector opens a connection with a secret's own credentials (testSecret).
type Connector func(ctx context.Context, d secretstore.DatabaseSecret) (*pgx.Conn, error)

// Rotator rotates database secrets of one store.
type Rotator struct {
	Store *secretstore.Store
	// Admin opens a connection to the writer as a role that may ALTER ROLE the secret's user.
	Admin func(ctx context.Context) (*pgx.Conn, error)
	// Connect logs in with a candidate secret; TLSConnector is the usual one.
	Connect Connector
	Log     *slog.Logger
	// GeneratePassword makes the new password (default secretstore.GeneratePassword).
	GeneratePassword func() (string, error)
	// AfterStep, when set, is called after each step of Rotate succeeds, with the step's name
	// (the supervisor's crash points).
	AfterStep func(step string)
}

func (r *Rotator) after(step string) {
	if r.AfterStep != nil {
		r.AfterStep(step)
	}
}

// Result describes a finished rotation; it holds no secret.
type Result struct {
	Secret    string        `json:"secret"`
	Username  string        `json:"username"`
	VersionID string        `json:"versionId"` // the new AWSCURRENT
	Duration  time.Duration `json:"duration"`
}

// TLSConnector connects to the secret's host and port with sslmode=verify-full against the CA
// bundle in caFile. The password is set on the parsed configuration, never in a connection
// string, so that no parse or connect error can quote it.
func TLSConnector(caFile string) Connector {
	return func(ctx context.Context, d secretstore.DatabaseSecret) (*pgx.Conn, error) {
		cc, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d dbname=%s user=%s sslmode=verify-full sslrootcert=%s connect_timeout=10 application_name=apgstack-rotation",
			connValue(d.Host), d.Port, connValue(d.DBName), connValue(d.Username), connValue(caFile)))
		if err != nil {
			return nil, fmt.Errorf("connection settings for %s@%s: %w", d.Username, net.JoinHostPort(d.Host, strconv.Itoa(d.Port)), err)
		}
		cc.Password = d.Password
		return pgx.ConnectConfig(ctx, cc)
	}
}

func connValue(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

func (r *Rotator) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

// Rotate runs the four steps on the secret name. On failure AWSCURRENT still works: a failed
// createSecret or setSecret changed nothing the database uses, and after a failed testSecret or
// finishSecret the database gets the current password back.
func (r *Rotator) Rotate(ctx context.Context, name string) (Result, error) {
	start := time.Now()
	if r.Store == nil || r.Admin == nil || r.Connect == nil {
		return Result{}, fmt.Errorf("rotate secret %s: the rotator needs a store, an admin connection and a connector", name)
	}
	cur, err := r.Store.GetDatabase(name, secretstore.Current)
	if err != nil {
		return Result{}, r.stepErr(name, StepCreate, err, cur.Password)
	}
	version, err := r.CreateSecret(ctx, name)
	if err != nil {
		return Result{}, err
	}
	r.after(StepCreate)
	if err := r.finish(ctx, name, version); err != nil {
		return Result{}, err
	}
	res := Result{Secret: name, Username: cur.Username, VersionID: version, Duration: time.Since(start)}
	r.log().Info("secret rotated", "secret", name, "user", cur.Username, "version", version, "duration", res.Duration)
	return res, nil
}

// finish runs setSecret, testSecret and finishSecret on the AWSPENDING version, giving the
// database the AWSCURRENT password back when testSecret or finishSecret fails.
func (r *Rotator) finish(ctx context.Context, name, version string) error {
	if err := r.SetSecret(ctx, name, version); err != nil {
		return err
	}
	r.after(StepSet)
	if err := r.TestSecret(ctx, name, version); err != nil {
		return r.rollback(ctx, name, err)
	}
	r.after(StepTest)
	if err := r.FinishSecret(ctx, name, version); err != nil {
		return r.rollback(ctx, name, err)
	}
	r.after(StepFinish)
	return nil
}

// Resume completes a rotation that stopped before its end (its process died): when the secret
// has an AWSPENDING version, the database gets that password, which is tested and made
// AWSCURRENT, as Secrets Manager's next attempt would (its createSecret keeps an existing
// AWSPENDING). It reports whether there was one; on failure AWSCURRENT works, as after Rotate.
func (r *Rotator) Resume(ctx context.Context, name string) (Result, bool, error) {
	start := time.Now()
	v, err := r.Store.Get(name, secretstore.Pending)
	if err != nil {
		return Result{}, false, nil // nothing pending (or no such secret): nothing to resume
	}
	if slices.Contains(v.VersionStages, secretstore.Current) {
		return Result{}, false, nil
	}
	d, err := r.Store.GetDatabase(name, secretstore.Pending)
	if err != nil {
		return Result{}, true, r.stepErr(name, StepSet, err)
	}
	if err := r.finish(ctx, name, v.VersionID); err != nil {
		return Result{}, true, err
	}
	res := Result{Secret: name, Username: d.Username, VersionID: v.VersionID, Duration: time.Since(start)}
	r.log().Info("interrupted rotation completed", "secret", name, "user", d.Username, "version", v.VersionID)
	return res, true, nil
}

// CreateSecret stores a copy of AWSCURRENT with a new generated password as AWSPENDING and
// returns its version id.
func (r *Rotator) CreateSecret(ctx context.Context, name string) (string, error) {
	cur, err := r.Store.GetDatabase(name, secretstore.Current)
	if err != nil {
		return "", r.stepErr(name, StepCreate, err)
	}
	gen := r.GeneratePassword
	if gen == nil {
		gen = secretstore.GeneratePassword
	}
	pw, err := gen()
	if err != nil {
		return "", r.stepErr(name, StepCreate, err, cur.Password)
	}
	if pw == cur.Password {
		return "", r.stepErr(name, StepCreate, errors.New("the generated password equals the current one"), pw)
	}
	next := cur
	next.Password = pw
	data, err := json.Marshal(next)
	if err != nil {
		return "", r.stepErr(name, StepCreate, err, pw, cur.Password)
	}
	id, err := r.Store.PutPending(name, string(data))
	if err != nil {
		return "", r.stepErr(name, StepCreate, err, pw, cur.Password)
	}
	return id, nil
}

// pending returns the AWSPENDING secret, checking it is the version the rotation created.
func (r *Rotator) pending(name, step, version string) (secretstore.DatabaseSecret, error) {
	v, err := r.Store.Get(name, secretstore.Pending)
	if err != nil {
		return secretstore.DatabaseSecret{}, r.stepErr(name, step, err)
	}
	if v.VersionID != version {
		return secretstore.DatabaseSecret{}, r.stepErr(name, step, fmt.Errorf("AWSPENDING is version %s, not %s: another rotation runs", v.VersionID, version))
	}
	d, err := r.Store.GetDatabase(name, secretstore.Pending)
	if err != nil {
		return secretstore.DatabaseSecret{}, r.stepErr(name, step, err)
	}
	return d, nil
}

// SetSecret gives the database role the AWSPENDING password.
func (r *Rotator) SetSecret(ctx context.Context, name, version string) error {
	d, err := r.pending(name, StepSet, version)
	if err != nil {
		return err
	}
	if err := r.setPassword(ctx, d.Username, d.Password); err != nil {
		return r.stepErr(name, StepSet, err, d.Password)
	}
	return nil
}

// setPassword sets a role's password as a SCRAM verifier. The role must exist: ALTER ROLE on a
// missing role fails, and nothing is created.
func (r *Rotator) setPassword(ctx context.Context, user, password string) error {
	verifier, err := scram.Verifier(password)
	if err != nil {
		return err
	}
	conn, err := r.Admin(ctx)
	if err != nil {
		return fmt.Errorf("connect to the writer: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// A transaction, so statement logging is off for this statement alone (the verifier must not
	// reach the server log). Errors name the role, never the statement.
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("alter role %q: begin: %w", user, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := scram.ExecUnlogged(ctx, tx, "ALTER ROLE "+pgx.Identifier{user}.Sanitize()+" PASSWORD "+postgres.Quote(verifier)); err != nil {
		return fmt.Errorf("alter role %q: %w", user, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("alter role %q: commit: %w", user, err)
	}
	return nil
}

// TestSecret logs in with the AWSPENDING secret and runs a query.
func (r *Rotator) TestSecret(ctx context.Context, name, version string) error {
	d, err := r.pending(name, StepTest, version)
	if err != nil {
		return err
	}
	conn, err := r.Connect(ctx, d)
	if err != nil {
		return r.stepErr(name, StepTest, fmt.Errorf("log in as %q with the pending password: %w", d.Username, err), d.Password)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var user string
	if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&user); err != nil {
		return r.stepErr(name, StepTest, fmt.Errorf("query as %q: %w", d.Username, err), d.Password)
	}
	if user != d.Username {
		return r.stepErr(name, StepTest, fmt.Errorf("logged in as %q, expected %q", user, d.Username))
	}
	return nil
}

// FinishSecret makes AWSPENDING the AWSCURRENT version; the old current becomes AWSPREVIOUS.
func (r *Rotator) FinishSecret(_ context.Context, name, version string) error {
	if _, err := r.pending(name, StepFinish, version); err != nil {
		return err
	}
	if err := r.Store.Promote(name, version); err != nil {
		return r.stepErr(name, StepFinish, err)
	}
	return nil
}

// rollback gives the database the AWSCURRENT password again after testSecret or finishSecret
// failed, and returns the step's error, marked rolled back, or joined with the rollback's error.
func (r *Rotator) rollback(ctx context.Context, name string, stepErr error) error {
	var se *StepError
	if !errors.As(stepErr, &se) {
		return stepErr
	}
	cur, err := r.Store.GetDatabase(name, secretstore.Current)
	if err == nil {
		// A cancelled rotation must still put the password back.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		err = r.setPassword(rctx, cur.Username, cur.Password)
	}
	if err != nil {
		r.log().Error("rotation rollback failed: the database may hold the AWSPENDING password", "secret", name, "step", se.Step, "err", redact(err.Error(), cur.Password))
		return errors.Join(stepErr, fmt.Errorf("rotate secret %s: give the database the AWSCURRENT password back: %s", name, redact(err.Error(), cur.Password)))
	}
	se.RolledBack = true
	return se
}

// stepErr wraps err for a step, with any of the given passwords blanked out of its message.
func (r *Rotator) stepErr(name, step string, err error, passwords ...string) *StepError {
	return &StepError{Secret: name, Step: step, msg: redact(err.Error(), passwords...), err: err}
}

func redact(msg string, passwords ...string) string {
	for _, p := range passwords {
		if p != "" {
			msg = strings.ReplaceAll(msg, p, "********")
		}
	}
	return msg
}
