package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/apgstack/apgstack/internal/aws/customresource"
	"github.com/apgstack/apgstack/internal/bootstrap"
	"github.com/apgstack/apgstack/internal/twin"
)

var sslModes = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}

// roleSecrets is the --secrets-out file: the generated passwords of the application roles.
type roleSecrets struct {
	Owner     *customresource.Credentials `json:"owner,omitempty"`
	ReadWrite *customresource.Credentials `json:"readWrite,omitempty"`
	ReadOnly  *customresource.Credentials `json:"readOnly,omitempty"`
}

func newBootstrapCmd(a *App) *cobra.Command {
	var (
		host, dbname, username, passwordSecret, sslmode, sslrootcert, secretsOut string
		port                                                                     int
		optional                                                                 []string
	)
	cmd := &cobra.Command{
		Use:   "bootstrap",
		Short: "Create the extensions, application schema and least-privilege roles in any PostgreSQL or Aurora database",
		Long: `Bring a PostgreSQL or Aurora PostgreSQL database to apgstack's first-day standard, as the
stack's bootstrap does: the extensions pg_stat_statements and pgaudit, the application schema
(database.schema, or database.name in lower case) owned by <schema>_owner, a read-write role
<schema>_rw and a read-only role <schema>_ro. Safe to run again: it changes only what is missing.

The administrator's password comes from --password-secret (a JSON file or a Secrets Manager ARN
holding "username" and "password"), else PGPASSWORD, else a prompt on the terminal.
Roles that do not exist yet get generated passwords, written to the --secrets-out file (mode
0600) and shown nowhere; when that file exists, its passwords are used (and set again).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.Config(cmd)
			if err != nil {
				return err
			}
			asJSON, err := a.JSON()
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("port") {
				port = cfg.Database.Port
			}
			if dbname == "" {
				dbname = cfg.Database.Name
			}
			if port < 1 || port > 65535 {
				return Usagef("--port %d: allowed values are 1 to 65535", port)
			}
			if !slices.Contains(sslModes, sslmode) {
				return Usagef("--sslmode %q: allowed values are %s", sslmode, strings.Join(sslModes, ", "))
			}
			if host == "" {
				return Usagef("--host is empty: name the server (the cluster or writer endpoint)")
			}
			if sslrootcert != "" {
				if _, err := os.Stat(sslrootcert); err != nil {
					return Usagef("--sslrootcert %q: %v", sslrootcert, err)
				}
			}
			ctx := cmd.Context()
			user, password, err := a.adminPassword(ctx, cmd, passwordSecret, username, cfg.Target.AWS.Region, cfg.Target.AWS.Profile)
			if err != nil {
				return err
			}
			if user == "" {
				user = cfg.Database.Username
			}

			opts := bootstrap.DefaultOptions(cfg.Database)
			opts.Optional = optional
			// As the Lambda does: each role's rotation identity (<role>_clone) exists before
			// Secrets Manager's multi-user rotation first needs it, so the privileges hold.
			opts.Clones = true
			if err := opts.Validate(); err != nil {
				return Exit(ExitUsage, err)
			}

			u := url.URL{Scheme: "postgres", User: url.User(user), Host: net.JoinHostPort(host, strconv.Itoa(port)), Path: "/" + dbname}
			q := url.Values{"sslmode": {sslmode}, "connect_timeout": {"10"}, "application_name": {"apgstack-bootstrap"}}
			if sslrootcert != "" {
				q.Set("sslrootcert", sslrootcert)
			}
			u.RawQuery = q.Encode()
			pcfg, err := pgx.ParseConfig(u.String())
			if err != nil {
				return Usagef("connection settings: %v", err)
			}
			pcfg.Password = password
			a.Log.Info("connecting", "host", host, "port", port, "dbname", dbname, "user", user, "sslmode", sslmode)
			conn, err := pgx.ConnectConfig(ctx, pcfg)
			if err != nil {
				var pe *pgconn.PgError
				if errors.As(err, &pe) && (pe.Code == "28P01" || pe.Code == "28000") {
					return Exit(ExitAuth, fmt.Errorf("connect to %s:%d/%s as %s: %w", host, port, dbname, user, err))
				}
				return fmt.Errorf("connect to %s:%d/%s as %s: %w", host, port, dbname, user, err)
			}
			defer conn.Close(context.WithoutCancel(ctx))

			written, err := rolePasswords(ctx, conn, &opts, secretsOut)
			if err != nil {
				return err
			}
			rep, err := bootstrap.Run(ctx, conn, opts)
			if err != nil {
				return err
			}
			if asJSON {
				return a.PrintJSON(struct {
					bootstrap.Report
					Schema      string   `json:"schema"`
					Roles       []string `json:"roles"`
					SecretsFile string   `json:"secretsFile,omitempty"`
				}{rep, opts.Schema, []string{opts.Owner.Name, opts.ReadWrite.Name, opts.ReadOnly.Name}, written})
			}
			for _, c := range rep.Created {
				fmt.Fprintln(a.Stdout, "created:", c)
			}
			for _, c := range rep.Changed {
				fmt.Fprintln(a.Stdout, "changed:", c)
			}
			for _, m := range rep.MissingOptional {
				fmt.Fprintln(a.Stdout, "missing optional extension:", m)
			}
			if rep.Empty() {
				fmt.Fprintln(a.Stdout, "no changes: schema", opts.Schema, "and its roles are up to standard")
			}
			if written != "" {
				fmt.Fprintln(a.Stderr, "generated role passwords written to", written)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&host, "host", "localhost", "server host name (the cluster or writer endpoint)")
	f.IntVar(&port, "port", 0, "server port (default database.port)")
	f.StringVar(&dbname, "dbname", "", "database (default database.name)")
	f.StringVar(&username, "username", "", "administrator to connect as (default: the secret's username, else database.username)")
	f.StringVar(&passwordSecret, "password-secret", "", `administrator credentials: a JSON file or a Secrets Manager ARN with "username" and "password"`)
	f.StringVar(&sslmode, "sslmode", "verify-full", "TLS mode, as libpq's sslmode: "+strings.Join(sslModes, ", "))
	f.StringVar(&sslrootcert, "sslrootcert", "", "CA bundle to verify the server against (e.g. the RDS global bundle); default: the system's")
	f.StringVar(&secretsOut, "secrets-out", "", "0600 JSON file receiving generated role passwords, or supplying them when it exists")
	f.StringSliceVar(&optional, "optional-extension", nil, "extension allowed to be missing (reported, not failed); repeatable")
	return cmd
}

// adminPassword finds the administrator's credentials: --password-secret, PGPASSWORD, or a prompt.
func (a *App) adminPassword(ctx context.Context, cmd *cobra.Command, secret, username, region, profile string) (string, string, error) {
	switch {
	case strings.HasPrefix(secret, "arn:"):
		var opts []func(*awsconfig.LoadOptions) error
		if region != "" {
			opts = append(opts, awsconfig.WithRegion(region))
		}
		if profile != "" {
			opts = append(opts, awsconfig.WithSharedConfigProfile(profile))
		}
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			return "", "", fmt.Errorf("AWS configuration for --password-secret: %w", err)
		}
		c, err := customresource.ReadCredentials(ctx, customresource.SecretsManagerGetter(secretsmanager.NewFromConfig(awsCfg)), secret)
		if err != nil {
			return "", "", err
		}
		return orDefault(username, c.Username), c.Password, nil
	case secret != "":
		c, err := customresource.ReadCredentials(ctx, func(context.Context, string) (string, error) {
			b, err := os.ReadFile(secret)
			if err != nil {
				return "", Usagef("--password-secret: %v", err)
			}
			return string(b), nil
		}, secret)
		if err != nil {
			var ee *ExitError
			if errors.As(err, &ee) {
				return "", "", err
			}
			return "", "", Exit(ExitUsage, fmt.Errorf("--password-secret: %w", err))
		}
		return orDefault(username, c.Username), c.Password, nil
	}
	if pw := a.Getenv("PGPASSWORD"); pw != "" {
		return username, pw, nil
	}
	in, ok := a.Stdin.(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return "", "", Usagef("no administrator password: set PGPASSWORD, pass --password-secret, or run in a terminal to be asked")
	}
	fmt.Fprint(a.Stderr, "Password: ")
	pw, err := term.ReadPassword(int(in.Fd()))
	fmt.Fprintln(a.Stderr)
	if err != nil {
		return "", "", fmt.Errorf("read password: %w", err)
	}
	return username, string(pw), nil
}

func orDefault(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

// rolePasswords fills the role passwords: from the --secrets-out file when it exists, else
// generated for roles that do not exist yet and written to that file before anything is created
// (so a password is never lost). Existing roles without a file entry keep their passwords.
// It returns the file written, if any.
func rolePasswords(ctx context.Context, conn *pgx.Conn, opts *bootstrap.Options, path string) (string, error) {
	roles := []*bootstrap.Role{&opts.Owner, &opts.ReadWrite, &opts.ReadOnly}
	if path != "" {
		data, err := os.ReadFile(path)
		switch {
		case err == nil:
			fi, err := os.Stat(path)
			if err != nil {
				return "", err
			}
			if fi.Mode().Perm()&0o077 != 0 {
				return "", Usagef("--secrets-out %s: mode %v lets others read the passwords; run chmod 600 %s", path, fi.Mode().Perm(), path)
			}
			var s roleSecrets
			if json.Unmarshal(data, &s) != nil {
				return "", Usagef("--secrets-out %s: not a JSON object with owner, readWrite and readOnly entries", path)
			}
			for i, c := range []*customresource.Credentials{s.Owner, s.ReadWrite, s.ReadOnly} {
				if c == nil {
					continue
				}
				if c.Username != roles[i].Name {
					return "", Usagef("--secrets-out %s: holds role %q where the configuration names %q", path, c.Username, roles[i].Name)
				}
				roles[i].Password = c.Password
			}
			return "", nil
		case !errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("--secrets-out: %w", err)
		}
	}
	var newRoles []string
	var s roleSecrets
	slots := []**customresource.Credentials{&s.Owner, &s.ReadWrite, &s.ReadOnly}
	for i, r := range roles {
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", r.Name).Scan(&exists); err != nil {
			return "", fmt.Errorf("look up role %s: %w", r.Name, err)
		}
		if exists {
			continue
		}
		pw, err := twin.GeneratePassword()
		if err != nil {
			return "", err
		}
		r.Password = pw
		*slots[i] = &customresource.Credentials{Username: r.Name, Password: pw}
		newRoles = append(newRoles, r.Name)
	}
	if len(newRoles) == 0 {
		return "", nil
	}
	if path == "" {
		return "", Usagef("roles %s do not exist yet: pass --secrets-out FILE to receive their generated passwords", strings.Join(newRoles, ", "))
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("--secrets-out: %w", err)
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, nil
}
