// Package customresource is the CloudFormation custom resource behind the database stack's
// bootstrap: Create and Update run package bootstrap against the new cluster; Delete leaves the
// data alone. It always answers CloudFormation's pre-signed response URL — FAILED with the reason
// when anything fails (never a password), unless the stack tolerates bootstrap failures.
package customresource

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	neturl "net/url"
	"strconv"
	"strings"
	"time"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/internal/aws/rdsca"
	"github.com/apgstack/apgstack/internal/bootstrap"
	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Resource property names, as the database stack passes them.
const (
	PropMasterSecretArn    = "MasterSecretArn"
	PropOwnerSecretArn     = "OwnerSecretArn"
	PropReadWriteSecretArn = "ReadWriteSecretArn"
	PropReadOnlySecretArn  = "ReadOnlySecretArn"
	PropHost               = "Host"
	PropPort               = "Port"
	PropDBName             = "DBName"
	PropSchema             = "Schema"
	PropTolerateFailure    = "TolerateFailure"
)

// SecretGetter returns the SecretString of a secret.
type SecretGetter func(ctx context.Context, arn string) (string, error)

// Target is where to connect.
type Target struct {
	Host     string
	Port     int
	Database string
}

// ConnectFunc opens a connection as user.
type ConnectFunc func(ctx context.Context, t Target, user, password string) (*pgx.Conn, error)

// Handler answers custom-resource events. Zero fields take the defaults of New.
type Handler struct {
	Secrets SecretGetter
	// Rotation reads rotation states, for the rotation wait (rotation.go).
	Rotation RotationReader
	Connect  ConnectFunc
	HTTP     *http.Client
	Log      *slog.Logger
	// AuthAttempts is how often authentication is tried (the master secret is read anew each
	// time: a rotation may be switching it); Backoff is the first wait, doubled after each try.
	AuthAttempts int
	Backoff      time.Duration
}

// New is a handler reading secrets with client and verifying the server against the RDS CAs.
func New(client *secretsmanager.Client, log *slog.Logger) *Handler {
	return &Handler{
		Secrets:      SecretsManagerGetter(client),
		Rotation:     SecretsManagerRotation(client),
		Connect:      TLSConnect(rdsca.Pool()),
		HTTP:         &http.Client{Timeout: 30 * time.Second},
		Log:          log,
		AuthAttempts: 5,
		Backoff:      2 * time.Second,
	}
}

// SecretsManagerGetter reads secrets with the AWS SDK.
func SecretsManagerGetter(client *secretsmanager.Client) SecretGetter {
	return func(ctx context.Context, arn string) (string, error) {
		out, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
		if err != nil {
			return "", fmt.Errorf("read secret %s: %w", arn, err)
		}
		if out.SecretString == nil {
			return "", fmt.Errorf("read secret %s: no SecretString (binary secrets are not supported)", arn)
		}
		return *out.SecretString, nil
	}
}

// TLSConnect connects with TLS, verifying the server's certificate chain against roots and its
// name against the host (libpq's sslmode=verify-full); no plain-text fallback.
func TLSConnect(roots *x509.CertPool) ConnectFunc {
	return func(ctx context.Context, t Target, user, password string) (*pgx.Conn, error) {
		cfg, err := pgx.ParseConfig("connect_timeout=10 application_name=apgstack-bootstrap")
		if err != nil {
			return nil, err
		}
		cfg.Host, cfg.Port, cfg.Database = t.Host, uint16(t.Port), t.Database
		cfg.User, cfg.Password = user, password
		cfg.TLSConfig = &tls.Config{RootCAs: roots, ServerName: t.Host, MinVersion: tls.VersionTLS12}
		cfg.Fallbacks = nil
		return pgx.ConnectConfig(ctx, cfg)
	}
}

// Credentials are the username and password of a secret, in the RDS secret JSON layout.
type Credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// ReadCredentials reads and parses a secret. Parse errors never quote the secret's content.
func ReadCredentials(ctx context.Context, get SecretGetter, arn string) (Credentials, error) {
	s, err := get(ctx, arn)
	if err != nil {
		return Credentials{}, err
	}
	var c Credentials
	if json.Unmarshal([]byte(s), &c) != nil || c.Password == "" {
		return Credentials{}, fmt.Errorf("secret %s: want a JSON object with \"username\" and a non-empty \"password\"", arn)
	}
	return c, nil
}

// Properties are the custom resource's parsed properties.
type Properties struct {
	MasterSecretArn, OwnerSecretArn, ReadWriteSecretArn, ReadOnlySecretArn string
	Target                                                                 Target
	Schema                                                                 string
	TolerateFailure                                                        bool
}

// ParseProperties checks the properties; errors name the property and what is allowed.
func ParseProperties(p map[string]any) (Properties, error) {
	var errs []error
	str := func(name string, required bool) string {
		v, ok := p[name]
		if !ok || v == nil || v == "" {
			if required {
				errs = append(errs, fmt.Errorf("property %s is missing: required", name))
			}
			return ""
		}
		switch x := v.(type) {
		case string:
			return x
		case float64:
			return strconv.FormatFloat(x, 'f', -1, 64)
		case bool:
			return strconv.FormatBool(x)
		}
		errs = append(errs, fmt.Errorf("property %s: want a string, got %T", name, v))
		return ""
	}
	out := Properties{
		MasterSecretArn:    str(PropMasterSecretArn, true),
		OwnerSecretArn:     str(PropOwnerSecretArn, true),
		ReadWriteSecretArn: str(PropReadWriteSecretArn, true),
		ReadOnlySecretArn:  str(PropReadOnlySecretArn, true),
		Target:             Target{Host: str(PropHost, true), Database: str(PropDBName, true)},
		Schema:             str(PropSchema, false),
	}
	if port := str(PropPort, true); port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			errs = append(errs, fmt.Errorf("property %s %q: want a port number 1..65535", PropPort, port))
		}
		out.Target.Port = n
	}
	switch t := str(PropTolerateFailure, false); strings.ToLower(t) {
	case "", "false":
	case "true":
		out.TolerateFailure = true
	default:
		errs = append(errs, fmt.Errorf("property %s %q: want \"true\" or \"false\"", PropTolerateFailure, t))
	}
	if out.Schema == "" {
		out.Schema = apgstack.Database{Name: out.Target.Database}.SchemaName()
	}
	return out, errors.Join(errs...)
}

// maxReason keeps the response under CloudFormation's 4 KiB limit.
const maxReason = 1500

// Handle answers one event. It returns an error only when the response could not be delivered
// (so Lambda retries); a failed bootstrap is reported to CloudFormation, not returned. A panic in
// the work is answered as FAILED too: CloudFormation would otherwise wait an hour.
func (h *Handler) Handle(ctx context.Context, ev cfn.Event) error {
	h.defaults()
	if _, ok := ev.ResourceProperties[PropRotatedSecretArn]; ok {
		return h.handleRotationWait(ctx, ev)
	}
	resp := cfn.NewResponse(&ev)
	resp.PhysicalResourceID = ev.PhysicalResourceID
	log := h.Log.With("requestType", ev.RequestType, "logicalResourceId", ev.LogicalResourceID, "requestId", ev.RequestID)

	props, perr := ParseProperties(ev.ResourceProperties)
	if resp.PhysicalResourceID == "" {
		// Stable across updates of the same database, so Update never replaces the resource.
		resp.PhysicalResourceID = "apgstack-bootstrap/" + props.Target.Database + "/" + props.Schema
		if perr != nil {
			resp.PhysicalResourceID = "apgstack-bootstrap/" + ev.RequestID
		}
	}
	work, cancel := workContext(ctx)
	defer cancel()

	var rep bootstrap.Report
	err := guard(func() error {
		switch ev.RequestType {
		case cfn.RequestDelete:
			// The data outlives the resource: the final snapshot and the cluster's own deletion
			// policy decide what happens to it.
			log.Info("delete: leaving the database alone")
			return nil
		case cfn.RequestCreate, cfn.RequestUpdate:
			if perr != nil {
				return perr
			}
			var err error
			rep, err = h.bootstrap(work, log, props)
			return err
		}
		return fmt.Errorf("request type %q: want Create, Update or Delete", ev.RequestType)
	})

	switch {
	case err == nil:
		resp.Status = cfn.StatusSuccess
		if ev.RequestType != cfn.RequestDelete {
			resp.Data = map[string]any{
				"Schema": props.Schema, "Created": strconv.Itoa(len(rep.Created)), "Changed": strconv.Itoa(len(rep.Changed)),
				"MissingOptional": strings.Join(rep.MissingOptional, ","),
			}
			log.Info("bootstrap done", "created", rep.Created, "changed", rep.Changed, "missingOptional", rep.MissingOptional)
		}
	case props.TolerateFailure:
		reason := truncate("bootstrap failed (tolerated, TolerateFailure=true): " + err.Error())
		resp.Status, resp.Reason = cfn.StatusSuccess, reason
		resp.Data = map[string]any{"BootstrapError": truncate(err.Error())}
		log.Warn("bootstrap failed, tolerated", "err", err)
	default:
		resp.Status, resp.Reason = cfn.StatusFailed, truncate(err.Error())
		log.Error("bootstrap failed", "err", err)
	}
	return h.answer(ctx, ev, resp)
}

// workContext keeps time to answer: a Lambda killed at its deadline sends nothing, and
// CloudFormation would wait an hour for the response.
func workContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok {
		return context.WithDeadline(ctx, d.Add(-responseReserve))
	}
	return context.WithCancel(ctx)
}

// guard runs fn and turns a panic into an error.
func guard(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the bootstrap function failed unexpectedly (panic: %v); its log has the details", r)
		}
	}()
	return fn()
}

// answer sends resp, with time of its own even when the work used all of ctx.
func (h *Handler) answer(ctx context.Context, ev cfn.Event, resp *cfn.Response) error {
	sendCtx, cancelSend := context.WithTimeout(context.WithoutCancel(ctx), responseReserve)
	defer cancelSend()
	return h.send(sendCtx, ev.ResponseURL, resp)
}

// InitFailed is the handler of a function that could not initialize (no AWS configuration, say):
// it still answers every event, FAILED with the reason for Create and Update, SUCCESS for Delete
// (which has nothing to undo), so that neither a deployment nor a teardown waits an hour.
func InitFailed(initErr error, log *slog.Logger) func(context.Context, cfn.Event) error {
	h := &Handler{Log: log}
	h.defaults()
	return func(ctx context.Context, ev cfn.Event) error {
		resp := cfn.NewResponse(&ev)
		resp.PhysicalResourceID = ev.PhysicalResourceID
		if resp.PhysicalResourceID == "" {
			resp.PhysicalResourceID = "apgstack-bootstrap/" + ev.RequestID
		}
		if ev.RequestType == cfn.RequestDelete {
			resp.Status = cfn.StatusSuccess
		} else {
			resp.Status, resp.Reason = cfn.StatusFailed, truncate("the bootstrap function could not start: "+initErr.Error())
		}
		h.Log.Error("answering without work: initialization failed", "err", initErr, "requestType", ev.RequestType)
		return h.answer(ctx, ev, resp)
	}
}

// responseReserve is the time kept back from the Lambda's deadline to send the response.
const responseReserve = 15 * time.Second

func (h *Handler) defaults() {
	if h.HTTP == nil {
		h.HTTP = &http.Client{Timeout: 30 * time.Second}
	}
	if h.Log == nil {
		h.Log = slog.New(slog.DiscardHandler)
	}
	if h.Connect == nil {
		h.Connect = TLSConnect(rdsca.Pool())
	}
	if h.AuthAttempts < 1 {
		h.AuthAttempts = 1
	}
}

func truncate(s string) string {
	if len(s) > maxReason {
		return s[:maxReason] + "…"
	}
	return s
}

func (h *Handler) bootstrap(ctx context.Context, log *slog.Logger, p Properties) (bootstrap.Report, error) {
	if h.Secrets == nil {
		return bootstrap.Report{}, errors.New("no secret reader configured")
	}
	owner, rw, ro := bootstrap.RoleNames(p.Schema)
	// The secrets rotate with AWS's multi-user function: the bootstrap prepares the clones it
	// alternates with, so the privilege model holds from the first rotation on.
	opts := bootstrap.Options{Schema: p.Schema, Clones: true}
	for _, r := range []struct {
		arn  string
		name string
		dst  *bootstrap.Role
	}{
		{p.OwnerSecretArn, owner, &opts.Owner},
		{p.ReadWriteSecretArn, rw, &opts.ReadWrite},
		{p.ReadOnlySecretArn, ro, &opts.ReadOnly},
	} {
		c, err := ReadCredentials(ctx, h.Secrets, r.arn)
		if err != nil {
			return bootstrap.Report{}, err
		}
		// The roles are always the schema's; the secret names the identity its password is for
		// (the role, or its clone once a rotation ran). bootstrap.Options.Validate refuses any
		// other name.
		*r.dst = bootstrap.Role{Name: r.name, Login: c.Username, Password: c.Password}
	}
	conn, err := h.connect(ctx, log, p)
	if err != nil {
		return bootstrap.Report{}, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return bootstrap.Run(ctx, conn, opts)
}

// connect logs in as the master user, reading the secret anew and backing off after each
// authentication failure: the rotation function may be between setting and publishing a password.
func (h *Handler) connect(ctx context.Context, log *slog.Logger, p Properties) (*pgx.Conn, error) {
	wait := h.Backoff
	for attempt := 1; ; attempt++ {
		master, err := ReadCredentials(ctx, h.Secrets, p.MasterSecretArn)
		if err != nil {
			return nil, err
		}
		if master.Username == "" {
			return nil, fmt.Errorf("secret %s: no \"username\"", p.MasterSecretArn)
		}
		conn, err := h.Connect(ctx, p.Target, master.Username, master.Password)
		if err == nil {
			return conn, nil
		}
		err = fmt.Errorf("connect to %s:%d/%s as %s: %w", p.Target.Host, p.Target.Port, p.Target.Database, master.Username, err)
		if !isAuthFailure(err) || attempt >= h.AuthAttempts {
			return nil, err
		}
		log.Warn("authentication failed; retrying with the secret read anew", "attempt", attempt, "wait", wait.String())
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (gave up: %w)", err, ctx.Err())
		case <-time.After(wait):
		}
		wait *= 2
	}
}

func isAuthFailure(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "28P01" || pe.Code == "28000")
}

// send PUTs the response to the pre-signed URL. The URL was signed without a content type, so
// none is sent. Transient failures are retried a few times.
func (h *Handler) send(ctx context.Context, url string, resp *cfn.Response) error {
	body, err := json.Marshal(resp)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	var last error
	for attempt := range 3 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("send response: %w (last: %w)", ctx.Err(), last)
			case <-time.After(time.Duration(attempt) * time.Second):
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("send response: %w", err)
		}
		req.Header.Del("Content-Type")
		res, err := h.HTTP.Do(req)
		if err != nil {
			// The pre-signed URL carries a signature: keep it out of errors and logs.
			var ue *neturl.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			last = err
			continue
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			return nil
		}
		last = fmt.Errorf("status %s", res.Status)
		if res.StatusCode < 500 {
			break
		}
	}
	return fmt.Errorf("send response to CloudFormation: %w", last)
}
