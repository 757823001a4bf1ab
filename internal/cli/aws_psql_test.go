package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apgstack/apgstack/internal/testkit/awsfake"
	"github.com/apgstack/apgstack/internal/testkit/pgtest"
)

// fakeSSH stands in for ssh: it records its arguments, listens on the -L port and forwards
// every connection to FAKE_SSH_TARGET (a real PostgreSQL server here), as the tunnel through the
// bastion would forward to the cluster.
const fakeSSH = `package main

import (
	"io"
	"net"
	"os"
	"strings"
)

func main() {
	os.WriteFile(os.Getenv("FAKE_SSH_ARGS"), []byte(strings.Join(os.Args[1:], "\n")), 0o600)
	var spec string
	for i, a := range os.Args {
		if a == "-L" && i+1 < len(os.Args) {
			spec = os.Args[i+1]
		}
	}
	parts := strings.Split(spec, ":")
	ln, err := net.Listen("tcp", parts[0]+":"+parts[1])
	if err != nil {
		os.Exit(255)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			s, err := net.Dial("tcp", os.Getenv("FAKE_SSH_TARGET"))
			if err != nil {
				return
			}
			defer s.Close()
			go io.Copy(s, c)
			io.Copy(c, s)
		}()
	}
}
`

// TestFakePSQLThroughTheBastion runs `apgstack psql --target aws` against awsfake (a FAKE of
// the AWS APIs) for the stacks and the master secret, a stand-in ssh for the tunnel, and a real
// PostgreSQL server with the real psql behind it.
func TestFakePSQLThroughTheBastion(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatal("the go command is needed to build the stand-in ssh")
	}
	srv := pgtest.Start(t, pgtest.WithSuperuser("pgadmin"))
	srv.CreateDatabase(t, "AuroraPostgresDB")

	dir := t.TempDir()
	src := filepath.Join(dir, "fakessh.go")
	if err := os.WriteFile(src, []byte(fakeSSH), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "ssh")
	if out, err := exec.Command("go", "build", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("build the stand-in ssh: %v\n%s", err, out)
	}
	argsFile := filepath.Join(dir, "ssh-args")
	t.Setenv("FAKE_SSH_ARGS", argsFile)
	t.Setenv("FAKE_SSH_TARGET", srv.Host+":"+strconv.Itoa(srv.Port))
	f := awsfake.New(t)
	awsEnv(t, f)
	awsTestKnobs.SSH, awsTestKnobs.SSLMode = bin, "disable" // the test server has no RDS certificate
	if code, _, stderr := runAWS(t, "up", "--yes"); code != ExitOK {
		t.Fatalf("up: exit %d\n%s", code, stderr)
	}
	db, _ := f.Stack("apgstack-database")
	f.PutSecretValue(db.Outputs["SecretArn"], `{"username":"pgadmin","password":"`+srv.Password+`"}`)

	code, stdout, stderr := runAWS(t, "psql", "--", "-At", "-c", "select current_user || '@' || current_database()")
	if code != ExitOK {
		t.Fatalf("psql: exit %d\n%s", code, stderr)
	}
	if got := strings.TrimSpace(stdout); got != "pgadmin@AuroraPostgresDB" {
		t.Errorf("psql printed %q", got)
	}
	if strings.Contains(stdout+stderr, srv.Password) {
		t.Error("the password was printed")
	}
	args, err := os.ReadFile(argsFile)
	if err != nil {
		t.Fatal(err)
	}
	a := strings.Split(string(args), "\n")
	bastion, _ := f.Stack("apgstack-bastion")
	if a[0] != "-i" || a[len(a)-1] != strings.Fields(bastion.Outputs["SSHCommand"])[len(strings.Fields(bastion.Outputs["SSHCommand"]))-1] ||
		!strings.Contains(string(args), ":"+db.Outputs["ClusterEndpoint"]+":") || !strings.Contains(string(args), "ExitOnForwardFailure=yes") {
		t.Errorf("ssh arguments:\n%s", args)
	}
	// The reader endpoint goes through the same tunnel.
	if code, _, stderr := runAWS(t, "psql", "--reader", "--", "-At", "-c", "select 1"); code != ExitOK {
		t.Fatalf("psql --reader: exit %d\n%s", code, stderr)
	}
	if args, _ := os.ReadFile(argsFile); !strings.Contains(string(args), ":"+db.Outputs["ReaderEndpoint"]+":") {
		t.Errorf("ssh arguments for the reader:\n%s", args)
	}
}

func TestFakePSQLTunnelFailureIsExplained(t *testing.T) {
	f := awsfake.New(t) // a FAKE of the AWS APIs
	awsEnv(t, f)
	awsTestKnobs.SSH = "false" // an ssh that fails at once, as with a missing key
	if code, _, stderr := runAWS(t, "up", "--yes"); code != ExitOK {
		t.Fatalf("up: exit %d\n%s", code, stderr)
	}
	code, _, stderr := runAWS(t, "psql", "--", "-c", "select 1")
	if code != ExitFailure || !strings.Contains(stderr, "the SSH tunnel through the bastion ended") || !strings.Contains(stderr, "bastion.remoteAccessCIDR") {
		t.Errorf("exit %d\n%s", code, stderr)
	}
}
