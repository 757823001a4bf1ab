package certs

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apgstack/apgstack/internal/runas"
	"github.com/apgstack/apgstack/internal/testkit/pgtest"
	"github.com/apgstack/apgstack/internal/twin/endpoint"
)

// ensured makes a CA and server certificate in a fresh directory and returns the files, the
// server's leaf certificate and a pool holding the CA.
func ensured(t *testing.T, dir string) (Files, *x509.Certificate, *x509.CertPool) {
	t.Helper()
	f := files(dir)
	if err := Ensure(f, time.Now()); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("CA bundle has no certificate")
	}
	return f, leaf, pool
}

func TestServerCertificateCoversEveryLoopbackAddress(t *testing.T) {
	_, leaf, pool := ensured(t, t.TempDir())
	tests := []struct {
		host string
		ok   bool
	}{
		{"localhost", true},
		{"127.0.0.1", true},
		{"::1", true},
		{"0:0:0:0:0:0:0:1", true}, // the same address, spelled out
		{"example.com", false},
		{"127.0.0.2", false},
		{"::2", false},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			_, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: tt.host})
			if tt.ok && err != nil {
				t.Errorf("verify for %s: %v", tt.host, err)
			}
			if !tt.ok && err == nil {
				t.Errorf("certificate verifies for %s, which it must not cover", tt.host)
			}
		})
	}
}

// A twin made before ::1 was covered gets a new server certificate from the same CA.
func TestEnsureRenewsCertificateWithoutIPv6Loopback(t *testing.T) {
	f, _, pool := ensured(t, t.TempDir())
	ca, caKey, err := loadPair(f.CA, f.CAKey)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, key, err := loadPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)} // what older versions issued
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := writePair(f.Cert, f.Key, der, key); err != nil {
		t.Fatal(err)
	}
	caBefore, _ := os.ReadFile(f.CA)

	if err := Ensure(f, time.Now()); err != nil {
		t.Fatal(err)
	}
	leaf, _, err := loadPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "::1"}); err != nil {
		t.Errorf("renewed certificate does not cover ::1: %v", err)
	}
	if caAfter, _ := os.ReadFile(f.CA); string(caAfter) != string(caBefore) {
		t.Error("CA changed: clients' bundles would stop verifying")
	}
}

// listenIPv6Loopback listens on [::1]:0, or skips where the machine has no IPv6 loopback (the
// endpoints then listen on 127.0.0.1 only, so there is nothing to cover).
func listenIPv6Loopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback on this machine: %v", err)
	}
	return ln
}

func TestTLSHandshakeOnIPv6Loopback(t *testing.T) {
	f, _, pool := ensured(t, t.TempDir())
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	ln := tls.NewListener(listenIPv6Loopback(t), &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	// ServerName ::1 makes crypto/tls check the certificate's IP addresses, as verify-full does.
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "::1", MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS handshake with ServerName ::1: %v", err)
	}
	c.Close()
}

// The twin's path for a client that connects to ::1: the endpoint listens on 127.0.0.1 and ::1
// and passes the bytes to PostgreSQL on 127.0.0.1, so TLS runs end to end with the server's
// certificate, and verify-full must accept it for every loopback host.
func TestVerifyFullOnEveryLoopbackAddressThroughTheEndpoint(t *testing.T) {
	listenIPv6Loopback(t).Close()
	dir := pgtest.ReachableDir(t, "certs") // the postgres account must read the files
	f, _, _ := ensured(t, dir)
	if err := os.Chmod(filepath.Dir(f.Key), 0o755); err != nil {
		t.Fatal(err)
	}
	acct, err := runas.Resolve("")
	if err != nil {
		t.Fatal(err)
	}
	if err := acct.Chown(f.Key); err != nil { // PostgreSQL refuses a key it does not own (or root's with 0640)
		t.Fatal(err)
	}
	srv := pgtest.Start(t, pgtest.WithPreload(), pgtest.WithTLS(),
		pgtest.WithSetting("ssl_cert_file", f.Cert), pgtest.WithSetting("ssl_key_file", f.Key))

	port := freePort(t)
	ep, err := endpoint.ListenLoopback("cluster", port, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	ep.SetBackends([]string{net.JoinHostPort(srv.Host, strconv.Itoa(srv.Port))})

	psql, psqlErr := exec.LookPath(filepath.Join(srv.BinDir, "psql"))
	for _, host := range []string{"::1", "127.0.0.1", "localhost"} {
		t.Run(host, func(t *testing.T) {
			conninfo := "host=" + host + " port=" + strconv.Itoa(port) + " dbname=postgres user=" + srv.Superuser +
				" sslmode=verify-full sslrootcert=" + f.CA + " connect_timeout=10"
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cfg, err := pgx.ParseConfig(conninfo)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Password = srv.Password
			conn, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				t.Fatalf("pgx verify-full to %s: %v", host, err)
			}
			var ssl bool
			if err := conn.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil || !ssl {
				t.Errorf("connection to %s: ssl=%v, err=%v", host, ssl, err)
			}
			_ = conn.Close(ctx)

			// libpq is what psql and most drivers use; it checks IP addresses its own way.
			if psqlErr != nil {
				return
			}
			cmd := exec.CommandContext(ctx, psql, "-XAtc", "SELECT 1", conninfo)
			cmd.Env = append(os.Environ(), "PGPASSWORD="+srv.Password)
			out, err := cmd.CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "1" {
				t.Errorf("psql verify-full to %s: %v: %s", host, err, out)
			}
		})
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
