// Package pgtest starts a throwaway PostgreSQL server for tests: initdb with SCRAM and data
// checksums, listening on 127.0.0.1 on a port picked at run time, optionally with TLS from a test
// CA, and removed with all its files when the test ends.
//
// When apgstack's tests run as root (CI containers), the server runs as the "postgres" account
// through package runas, so its state lives in a directory that account can reach.
package pgtest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apgstack/apgstack/internal/runas"
	"github.com/jackc/pgx/v5"
)

// DefaultPreload is what the server preloads unless told otherwise: the libraries the bootstrap
// needs (pgaudit refuses CREATE EXTENSION unless preloaded).
var DefaultPreload = []string{"pg_stat_statements", "pgaudit"}

// PreferredMajor is the PostgreSQL major looked for first.
const PreferredMajor = 15

// Option configures Start.
type Option func(*config)

type config struct {
	preload   []string
	tls       bool
	superuser string
	settings  map[string]string
}

// WithPreload sets shared_preload_libraries (none when called with no names).
func WithPreload(libs ...string) Option { return func(c *config) { c.preload = libs } }

// WithTLS turns TLS on: a fresh test CA signs a server certificate for 127.0.0.1 and localhost,
// and pg_hba accepts TCP connections over TLS only (as rds.force_ssl=1 does).
func WithTLS() Option { return func(c *config) { c.tls = true } }

// WithSuperuser names the bootstrap superuser (default "postgres").
func WithSuperuser(name string) Option { return func(c *config) { c.superuser = name } }

// WithSetting adds a postgresql.conf setting; value is written as a quoted string.
func WithSetting(name, value string) Option {
	return func(c *config) { c.settings[name] = value }
}

// Server is a running throwaway server.
type Server struct {
	Host      string // always 127.0.0.1
	Port      int
	Superuser string
	Password  string
	Dir       string // everything lives under it; removed at cleanup
	DataDir   string
	LogFile   string // the server's log (stderr of postgres)
	BinDir    string
	// TLS only: the test CA that signed the server certificate (PEM and a file holding it).
	CAPEM  []byte
	CAFile string
	TLS    bool

	acct *runas.Account
}

// BinDir finds the PostgreSQL server programs: /usr/lib/postgresql/15/bin, else the highest
// major under /usr/lib/postgresql, else `pg_config --bindir`.
func BinDir() (string, error) {
	if ok(filepath.Join("/usr/lib/postgresql", strconv.Itoa(PreferredMajor), "bin")) {
		return filepath.Join("/usr/lib/postgresql", strconv.Itoa(PreferredMajor), "bin"), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return majorOf(dirs[i]) > majorOf(dirs[j]) })
	for _, d := range dirs {
		if ok(d) {
			return d, nil
		}
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if d := strings.TrimSpace(string(out)); ok(d) {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL server programs (initdb, pg_ctl, postgres) not found in /usr/lib/postgresql/<major>/bin " +
		"nor via pg_config --bindir: install the Debian package postgresql-15 (and postgresql-15-pgaudit for pgaudit)")
}

func ok(dir string) bool {
	for _, p := range []string{"initdb", "pg_ctl", "postgres"} {
		if fi, err := os.Stat(filepath.Join(dir, p)); err != nil || fi.IsDir() {
			return false
		}
	}
	return true
}

func majorOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// Start initializes and starts a server, and registers its removal with t.Cleanup. Missing
// PostgreSQL binaries fail the test (never skip: CI must run these tests).
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	c := &config{preload: DefaultPreload, superuser: "postgres", settings: map[string]string{}}
	for _, o := range opts {
		o(c)
	}
	bin, err := BinDir()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	acct, err := runas.Resolve("")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	dir := ReachableDir(t, "pgtest")
	s := &Server{Host: "127.0.0.1", Superuser: c.superuser, Password: randomHex(16), Dir: dir,
		DataDir: filepath.Join(dir, "data"), LogFile: filepath.Join(dir, "run", "server.log"), BinDir: bin, TLS: c.tls, acct: acct}
	t.Cleanup(s.stop)
	if err := acct.CheckReachable(dir); err != nil {
		t.Fatalf("pgtest: %v (set TMPDIR to a folder the postgres account can reach)", err)
	}
	if err := s.initdb(c); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	// The port is picked free just before start; another process may take it in between, so a
	// failed start is retried on a new port.
	var lastErr error
	for range 3 {
		if s.Port, err = freePort(); err != nil {
			t.Fatalf("pgtest: %v", err)
		}
		if lastErr = s.start(); lastErr == nil {
			return s
		}
	}
	t.Fatalf("pgtest: %v", lastErr)
	return nil
}

func (s *Server) run(args ...string) error {
	cmd := s.acct.Command(context.Background(), filepath.Join(s.BinDir, args[0]), args[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w\n%s", args[0], err, strings.TrimSpace(out.String()))
	}
	return nil
}

func (s *Server) initdb(c *config) error {
	if err := s.acct.MkdirAll(s.DataDir, 0o700); err != nil {
		return err
	}
	pwfile := filepath.Join(s.Dir, "pwfile")
	if err := s.writeOwned(pwfile, []byte(s.Password+"\n"), 0o600); err != nil {
		return err
	}
	defer os.Remove(pwfile)
	if err := s.run("initdb", "-D", s.DataDir, "-U", s.Superuser, "--pwfile="+pwfile,
		"--auth=scram-sha-256", "--data-checksums", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"); err != nil {
		return err
	}
	sock := filepath.Join(s.Dir, "run") // socket and server log, owned by the server account
	if err := s.acct.MkdirAll(sock, 0o700); err != nil {
		return err
	}
	conf := map[string]string{
		"listen_addresses":         "127.0.0.1",
		"unix_socket_directories":  sock,
		"shared_preload_libraries": strings.Join(c.preload, ","),
		"password_encryption":      "scram-sha-256",
		"fsync":                    "off", // a throwaway server: speed over durability
		"synchronous_commit":       "off",
		"full_page_writes":         "off",
		"max_connections":          "50",
		"shared_buffers":           "32MB",
	}
	hba := "local all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n"
	if c.tls {
		if err := s.makeCerts(); err != nil {
			return err
		}
		conf["ssl"] = "on"
		conf["ssl_cert_file"] = filepath.Join(s.DataDir, "server.crt")
		conf["ssl_key_file"] = filepath.Join(s.DataDir, "server.key")
		hba = "local all all scram-sha-256\nhostssl all all 127.0.0.1/32 scram-sha-256\n"
	}
	for k, v := range c.settings {
		conf[k] = v
	}
	keys := make([]string, 0, len(conf))
	for k := range conf {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("\n# pgtest\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = '%s'\n", k, strings.ReplaceAll(conf[k], "'", "''"))
	}
	f, err := os.OpenFile(filepath.Join(s.DataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return s.writeOwned(filepath.Join(s.DataDir, "pg_hba.conf"), []byte(hba), 0o600)
}

func (s *Server) start() error {
	logFile := s.LogFile
	err := s.run("pg_ctl", "start", "-D", s.DataDir, "-w", "-t", "60", "-l", logFile,
		"-o", "-p "+strconv.Itoa(s.Port))
	if err != nil {
		tail, _ := os.ReadFile(logFile)
		if len(tail) > 4000 {
			tail = tail[len(tail)-4000:]
		}
		return fmt.Errorf("start server on port %d: %w\nserver log:\n%s", s.Port, err, tail)
	}
	return nil
}

func (s *Server) stop() {
	if _, err := os.Stat(filepath.Join(s.DataDir, "postmaster.pid")); err == nil {
		_ = s.run("pg_ctl", "stop", "-D", s.DataDir, "-m", "immediate", "-w", "-t", "60")
	}
	_ = os.RemoveAll(s.Dir)
}

// writeOwned writes a file that the server account owns.
func (s *Server) writeOwned(path string, data []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, data, mode); err != nil {
		return err
	}
	if err := os.Chmod(path, mode); err != nil {
		return err
	}
	return s.acct.Chown(path)
}

// ConnString is a URL connection string for the superuser to database db. With TLS it asks for
// verify-full against the test CA.
func (s *Server) ConnString(db string) string {
	return s.ConnStringAs(s.Superuser, s.Password, db)
}

// ConnStringAs is ConnString for another role.
func (s *Server) ConnStringAs(user, password, db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password),
		Host: net.JoinHostPort(s.Host, strconv.Itoa(s.Port)), Path: "/" + db}
	q := url.Values{}
	if s.TLS {
		q.Set("sslmode", "verify-full")
		q.Set("sslrootcert", s.CAFile)
	} else {
		q.Set("sslmode", "disable")
	}
	q.Set("connect_timeout", "10")
	u.RawQuery = q.Encode()
	return u.String()
}

// Conn connects as the superuser to database db; the connection is closed at cleanup.
func (s *Server) Conn(t testing.TB, db string) *pgx.Conn {
	t.Helper()
	return s.ConnAs(t, s.Superuser, s.Password, db)
}

// ConnAs connects as another role; the connection is closed at cleanup.
func (s *Server) ConnAs(t testing.TB, user, password, db string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.ConnStringAs(user, password, db))
	if err != nil {
		t.Fatalf("pgtest: connect to %s as %s: %v", db, user, err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// CreateDatabase creates database name (owned by the superuser).
func (s *Server) CreateDatabase(t testing.TB, name string) {
	t.Helper()
	conn := s.Conn(t, "postgres")
	if _, err := conn.Exec(context.Background(), "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	_ = conn.Close(context.Background())
}

// RootCAs is a pool holding the test CA (nil without TLS).
func (s *Server) RootCAs() *x509.CertPool {
	if !s.TLS {
		return nil
	}
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(s.CAPEM)
	return p
}

// TLSConfig verifies the server against the test CA for host name 127.0.0.1 (nil without TLS).
func (s *Server) TLSConfig() *tls.Config {
	if !s.TLS {
		return nil
	}
	return &tls.Config{RootCAs: s.RootCAs(), ServerName: s.Host, MinVersion: tls.VersionTLS12}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// makeCerts creates a test CA and a server certificate for 127.0.0.1 and localhost.
func (s *Server) makeCerts() error {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "apgstack pgtest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	s.CAPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	s.CAFile = filepath.Join(s.Dir, "ca.crt")
	if err := os.WriteFile(s.CAFile, s.CAPEM, 0o644); err != nil {
		return err
	}
	if err := s.writeOwned(filepath.Join(s.DataDir, "server.crt"),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return s.writeOwned(filepath.Join(s.DataDir, "server.key"),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
}
