package certs

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func files(dir string) Files {
	return Files{CA: filepath.Join(dir, "ca.pem"), CAKey: filepath.Join(dir, "tls", "ca-key.pem"),
		Cert: filepath.Join(dir, "tls", "server.crt"), Key: filepath.Join(dir, "tls", "server.key")}
}

func TestEnsureVerifies(t *testing.T) {
	dir := t.TempDir()
	f := files(dir)
	now := time.Now()
	if err := Ensure(f, now); err != nil {
		t.Fatal(err)
	}
	for path, mode := range map[string]os.FileMode{f.CA: 0o644, f.CAKey: 0o600, f.Cert: 0o644, f.Key: 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s mode %v, want %v", path, fi.Mode().Perm(), mode)
		}
	}
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	caPEM, _ := os.ReadFile(f.CA)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("CA bundle has no certificate")
	}
	for _, name := range []string{"localhost", "127.0.0.1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "example.com"}); err == nil {
		t.Error("certificate verifies for a name it does not carry")
	}

	// A second run keeps everything; close to expiry renews the server certificate under the same CA.
	before, _ := os.ReadFile(f.Cert)
	if err := Ensure(f, now); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(f.Cert); string(after) != string(before) {
		t.Error("valid server certificate was replaced")
	}
	if err := Ensure(f, now.Add(380*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(f.Cert); string(after) == string(before) {
		t.Error("server certificate close to expiry was not renewed")
	}
	if after, _ := os.ReadFile(f.CA); string(after) != string(caPEM) {
		t.Error("CA changed on renewal")
	}
}
