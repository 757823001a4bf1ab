package cli

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/apgstack/apgstack"
	"github.com/apgstack/apgstack/internal/aws/deploy"
	"github.com/apgstack/apgstack/internal/aws/lambdazip"
	"github.com/apgstack/apgstack/internal/aws/rdsca"
	"github.com/apgstack/apgstack/internal/aws/stacks"
	"github.com/apgstack/apgstack/internal/progress"
	"github.com/apgstack/apgstack/internal/twin"
)

// AWSKnobs are the AWS target's settings a test changes; the zero value is the real thing.
type AWSKnobs struct {
	// Poll and ChangeSetPoll are how often stacks and change sets are polled (5 s and 2 s).
	Poll, ChangeSetPoll time.Duration
	// Packager builds the bootstrap Lambda's zip (default: from the module's source).
	Packager deploy.Packager
	// SSH is the ssh program of the psql tunnel; SSLMode psql's sslmode (verify-full).
	SSH, SSLMode string
}

func (k AWSKnobs) poll() (stacks, changeSets time.Duration) {
	return cmp.Or(k.Poll, 5*time.Second), cmp.Or(k.ChangeSetPoll, 2*time.Second)
}

func (k AWSKnobs) packager() deploy.Packager {
	if k.Packager != nil {
		return k.Packager
	}
	return deploy.PackagerFunc(buildBootstrapZip)
}

// addAWSFlags adds the flags of the AWS target to a command: --profile and --region everywhere,
// --dry-run on up, --disable-deletion-protection on down. The hooks read them when present.
func addAWSFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	if f.Lookup("profile") == nil {
		f.String("profile", "", "target aws: the AWS profile (overrides target.aws.profile and AWS_PROFILE)")
	}
	if f.Lookup("region") == nil {
		f.String("region", "", "target aws: the AWS Region (overrides target.aws.region and AWS_REGION)")
	}
	switch cmd.Name() {
	case "up":
		if f.Lookup("dry-run") == nil {
			f.Bool("dry-run", false, "show what up would change and change nothing (aws: the change sets, removed unexecuted; local: the plan of an update)")
		}
	case "down":
		if f.Lookup("disable-deletion-protection") == nil {
			f.Bool("disable-deletion-protection", false, "target aws: lift the cluster's deletion protection before deleting")
		}
	}
}

func flagString(cmd *cobra.Command, name string) string {
	if f := cmd.Flags().Lookup(name); f != nil {
		return f.Value.String()
	}
	return ""
}

func flagBool(cmd *cobra.Command, name string) bool {
	return flagString(cmd, name) == "true"
}

// awsDeployer checks Region and credentials (the standard chain with profile and Region from
// flags, then the configuration) and asks STS who we are, before anything else.
func awsDeployer(ctx context.Context, cmd *cobra.Command, a *App, cfg apgstack.Config) (*deploy.Deployer, deploy.Identity, error) {
	o := deploy.Options{Region: cfg.Target.AWS.Region, Profile: cfg.Target.AWS.Profile}
	if v := flagString(cmd, "region"); v != "" {
		o.Region = v
	}
	if v := flagString(cmd, "profile"); v != "" {
		o.Profile = v
	}
	awsCfg, err := deploy.Load(ctx, o)
	if err != nil {
		return nil, deploy.Identity{}, awsExit(err)
	}
	d := deploy.New(awsCfg)
	d.Poll, d.ChangeSetPoll = a.AWS.poll()
	d.View = progress.New(a.Stderr, progress.Options{Live: a.StderrIsTerminal(), Color: a.Color()})
	d.Out = a.Stderr
	d.Confirm = a.Confirm
	id, err := d.Identity(ctx)
	if err != nil {
		return nil, id, awsExit(err)
	}
	fmt.Fprintf(a.Stderr, "AWS account %s in %s as %s\n", id.Account, d.Region, id.Arn)
	return d, id, nil
}

// awsSession is the preamble of the AWS target's commands: the output format checked, then the
// deployer (Region, credentials, identity).
func awsSession(cmd *cobra.Command, a *App, cfg apgstack.Config) (*deploy.Deployer, bool, error) {
	asJSON, err := a.JSON()
	if err != nil {
		return nil, false, err
	}
	d, _, err := awsDeployer(cmd.Context(), cmd, a, cfg)
	return d, asJSON, err
}

// awsExit maps deploy errors to exit codes.
func awsExit(err error) error {
	var ee *ExitError
	var auth *deploy.AuthError
	var se *deploy.StackError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee):
		return err
	case errors.As(err, &auth):
		return Exit(ExitAuth, err)
	case errors.Is(err, deploy.ErrNoRegion):
		return Exit(ExitUsage, err)
	case deploy.IsInterrupted(err):
		return Exit(ExitInterrupted, err)
	case errors.Is(err, context.Canceled):
		return Exit(ExitInterrupted, fmt.Errorf("%w; nothing was cancelled on AWS: `apgstack status --target aws` shows where the stacks are, and running the command again carries on", err))
	case errors.As(err, &se) && se.RolledBack:
		return Exit(ExitRolledBack, err)
	case deploy.IsAuthError(err):
		return Exit(ExitAuth, err)
	}
	return Exit(ExitFailure, err)
}

// stackRefs names the three stacks, in deployment order.
func stackRefs(cfg apgstack.Config) []deploy.StackRef {
	return []deploy.StackRef{
		{Kind: stacks.Network, Name: cfg.Network.StackName},
		{Kind: stacks.Bastion, Name: cfg.Bastion.StackName},
		{Kind: stacks.Database, Name: cfg.Database.StackName},
	}
}

// bootstrapPackager builds the bootstrap Lambda from this checkout when the stack needs it.
func buildBootstrapZip(ctx context.Context) ([]byte, string, error) {
	dir, err := os.MkdirTemp("", "apgstack-lambda-*")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(dir)
	res, err := lambdazip.Build(ctx, "", dir)
	if err != nil {
		return nil, "", err
	}
	b, err := os.ReadFile(res.Path)
	return b, res.Key, err
}

func awsUp(cmd *cobra.Command, a *App, cfg apgstack.Config) error {
	asJSON, err := a.JSON()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	list, err := stacks.All(cfg)
	if err != nil {
		return Exit(ExitFailure, err)
	}
	if len(list) == 0 {
		return Exit(ExitFailure, errors.New("no stack builders are available in this build"))
	}
	d, _, err := awsDeployer(ctx, cmd, a, cfg)
	if err != nil {
		return err
	}
	dry := flagBool(cmd, "dry-run")
	if dry && !asJSON {
		d.Out = a.Stdout // the change sets are what a dry run produces (in the JSON too)
	}
	for _, w := range d.Preflight(ctx) {
		fmt.Fprintf(a.Stderr, "warning: %s\n", w)
	}
	// The bootstrap Lambda's zip goes to the configured bucket or, like cdk bootstrap's, to the
	// account's assets bucket (created after confirmation); it is built only when the database
	// stack bootstraps and its key is not in S3 yet.
	var pk deploy.Packager
	var assets string
	if cfg.Database.SnapshotName == "" {
		if cfg.Database.BootstrapS3Bucket == "" {
			ab, err := d.EnsureAssetsBucket(ctx, dry)
			if err != nil {
				d.View.Close()
				return awsExit(err)
			}
			if ab.Missing {
				fmt.Fprintf(a.Stderr, "dry run: up would create the assets bucket %s for the bootstrap Lambda and large templates\n", ab.Name)
			} else {
				assets = ab.Name
			}
		}
		if cfg.Database.BootstrapS3Bucket != "" || assets != "" {
			pk = deploy.PackagerFunc(func(ctx context.Context) ([]byte, string, error) {
				fmt.Fprintln(a.Stderr, "building the bootstrap Lambda for linux/arm64 ...")
				return a.AWS.packager().Package(ctx)
			})
		}
	}
	res, err := d.Up(ctx, list, deploy.UpOptions{DryRun: dry, Bootstrap: pk, AssetsBucket: assets})
	d.View.Close()
	if err != nil {
		return awsExit(err)
	}
	if asJSON {
		return a.PrintJSON(res)
	}
	if dry {
		return nil
	}
	printSummary(a, res.Summary)
	return nil
}

func printSummary(a *App, s deploy.Summary) {
	tw := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
	for _, kv := range s.Lines() {
		fmt.Fprintf(tw, "%s\t%s\n", kv[0], kv[1])
	}
	tw.Flush()
}

func awsDown(cmd *cobra.Command, a *App, cfg apgstack.Config) error {
	ctx := cmd.Context()
	d, asJSON, err := awsSession(cmd, a, cfg)
	if err != nil {
		return err
	}
	refs := stackRefs(cfg)
	for i, j := 0, len(refs)-1; i < j; i, j = i+1, j-1 { // database, bastion, network
		refs[i], refs[j] = refs[j], refs[i]
	}
	res, err := d.Down(ctx, refs, deploy.DownOptions{DisableDeletionProtection: flagBool(cmd, "disable-deletion-protection")})
	d.View.Close()
	if err != nil {
		return awsExit(err)
	}
	if asJSON {
		return a.PrintJSON(res)
	}
	if len(res.Deleted) > 0 {
		fmt.Fprintf(a.Stdout, "deleted %s\n", strings.Join(res.Deleted, ", "))
	}
	if res.FinalSnapshot != "" {
		fmt.Fprintf(a.Stdout, "final snapshot kept: %s\n", res.FinalSnapshot)
	}
	return nil
}

func awsStatus(cmd *cobra.Command, a *App, cfg apgstack.Config) error {
	ctx := cmd.Context()
	d, asJSON, err := awsSession(cmd, a, cfg)
	if err != nil {
		return err
	}
	st, err := d.Status(ctx, stackRefs(cfg))
	if err != nil {
		return awsExit(err)
	}
	if asJSON {
		return a.PrintJSON(st)
	}
	tw := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tSTACK\tSTATUS\tUPDATED")
	for _, s := range st {
		updated := "-"
		if !s.Updated.IsZero() {
			updated = s.Updated.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Kind, s.Name, s.Status, updated)
	}
	tw.Flush()
	for _, s := range st {
		if s.Reason != "" {
			fmt.Fprintf(a.Stdout, "%s: %s\n", s.Name, s.Reason)
		}
		if s.Hint != "" {
			fmt.Fprintf(a.Stdout, "%s: %s\n", s.Name, s.Hint)
		}
	}
	return nil
}

// The ssh program, and the TLS mode psql is given (tests use a stand-in ssh and a server
// without the RDS certificate).

// awsPSQL opens psql on the cluster (or reader) endpoint through an SSH tunnel via the bastion:
// the cluster lives in private subnets. The password comes from the master secret and reaches
// psql in a 0600 password file; TLS is verified against the Amazon RDS CA bundle for the
// endpoint's own name (PGHOST is the endpoint, PGHOSTADDR the tunnel).
func awsPSQL(cmd *cobra.Command, a *App, cfg apgstack.Config, reader bool, args []string) error {
	ctx := cmd.Context()
	d, _, err := awsDeployer(ctx, cmd, a, cfg)
	if err != nil {
		return err
	}
	st, err := d.Status(ctx, stackRefs(cfg))
	if err != nil {
		return awsExit(err)
	}
	ep, err := deploy.EndpointFrom(st, reader)
	if err != nil {
		return Exit(ExitFailure, err)
	}
	user, password, err := d.MasterCredentials(ctx, ep.SecretArn)
	if err != nil {
		return awsExit(err)
	}
	if user == "" {
		user = ep.User
	}
	bin, err := twin.PSQLBinary()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "apgstack-psql-*") // 0700
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ca := filepath.Join(dir, "rds-ca-bundle.pem")
	if err := os.WriteFile(ca, rdsca.PEM(), 0o600); err != nil {
		return err
	}
	port, stop, err := openTunnel(ctx, a, ep)
	if err != nil {
		return Exit(ExitFailure, err)
	}
	defer stop()
	pass := filepath.Join(dir, "pgpass")
	esc := strings.NewReplacer(`\`, `\\`, `:`, `\:`)
	line := fmt.Sprintf("*:%d:%s:%s:%s\n", port, esc.Replace(ep.DBName), esc.Replace(user), esc.Replace(password))
	if err := os.WriteFile(pass, []byte(line), 0o600); err != nil {
		return err
	}
	c := exec.CommandContext(ctx, bin, args...)
	c.Stdin, c.Stdout, c.Stderr = a.Stdin, a.Stdout, a.Stderr
	c.Env = append(withoutPG(os.Environ()),
		"PGHOST="+ep.Host, "PGHOSTADDR=127.0.0.1", "PGPORT="+strconv.Itoa(port),
		"PGDATABASE="+ep.DBName, "PGUSER="+user, "PGSSLMODE="+cmp.Or(a.AWS.SSLMode, "verify-full"), "PGSSLROOTCERT="+ca,
		"PGPASSFILE="+pass, "PGAPPNAME=apgstack-psql", "PGCONNECT_TIMEOUT=15")
	if err := c.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return Exit(ee.ExitCode(), errors.New("psql failed"))
		}
		return err
	}
	return nil
}

// openTunnel forwards a free local port to the endpoint through the bastion, with the bastion's
// own SSHCommand, and returns once the port answers.
func openTunnel(ctx context.Context, a *App, ep deploy.Endpoint) (int, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	words := ep.SSH[1:] // without "ssh"; the destination is the last word
	argv := append(append([]string{}, words[:len(words)-1]...), "-N",
		"-o", "ExitOnForwardFailure=yes", "-o", "StrictHostKeyChecking=accept-new", "-o", "ServerAliveInterval=30",
		"-L", fmt.Sprintf("127.0.0.1:%d:%s:%s", port, ep.Host, ep.Port), words[len(words)-1])
	c := exec.Command(cmp.Or(a.AWS.SSH, "ssh"), argv...)
	// ssh's own messages matter when the tunnel fails: keep them for the error.
	var sshErr lockedBuffer
	c.Stdout, c.Stderr = io.Discard, &sshErr
	if err := c.Start(); err != nil {
		return 0, nil, fmt.Errorf("start the SSH tunnel through the bastion: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	exited := false
	stop := func() {
		if !exited {
			_ = c.Process.Signal(syscall.SIGTERM)
			<-done
			exited = true
		}
	}
	fmt.Fprintf(a.Stderr, "tunnel: 127.0.0.1:%d -> %s:%s through %s\n", port, ep.Host, ep.Port, words[len(words)-1])
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			exited = true
			msg := sshErr.String()
			if len(msg) > 600 {
				msg = msg[len(msg)-600:]
			}
			return 0, nil, fmt.Errorf("the SSH tunnel through the bastion ended (%v: %s): the key file that SSHCommand names must be here, and the bastion must admit this address (bastion.remoteAccessCIDR)", err, strings.TrimSpace(msg))
		case <-ctx.Done():
			stop()
			return 0, nil, ctx.Err()
		case <-deadline.C:
			stop()
			return 0, nil, errors.New("the SSH tunnel through the bastion did not open within 30s")
		case <-tick.C:
			if conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond); err == nil {
				conn.Close()
				return port, stop, nil
			}
		}
	}
}

// lockedBuffer collects a child's output while other goroutines may read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
