// Package certs is the local twin's certificate authority: a CA and a server certificate for the
// names clients use (localhost, 127.0.0.1 and ::1), made with crypto/x509, and the CA bundle clients
// pass as sslrootcert — as RDS publishes its bundle for verify-full.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// dnsNames and ipAddresses are the names the server certificate covers: every address the
// endpoints listen on (127.0.0.1 and, where the machine has IPv6, ::1) and the name that resolves
// to them, so verify-full succeeds whichever one a client uses. Functions, not variables: nobody
// may change them.
func dnsNames() []string { return []string{"localhost"} }

func ipAddresses() []net.IP { return []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback} }

const (
	caValidity     = 10 * 365 * 24 * time.Hour
	serverValidity = 397 * 24 * time.Hour // the longest browsers accept; renewed well before
	renewBefore    = 30 * 24 * time.Hour
)

// Files are where the CA and server certificate live.
type Files struct {
	CA, CAKey string // CA certificate (the client bundle, 0644) and its key (0600)
	Cert, Key string // server certificate (0644) and key (0600)
}

// Ensure makes sure the CA and a valid server certificate exist: it creates what is missing and
// renews the server certificate when it expires within 30 days or no longer matches the CA or
// the names. The CA is kept, so clients' bundles stay valid.
func Ensure(f Files, now time.Time) error {
	caCert, caKey, err := loadPair(f.CA, f.CAKey)
	if errors.Is(err, os.ErrNotExist) {
		caCert, caKey, err = newCA(f, now)
	}
	if err != nil {
		return err
	}
	if serverValid(f, caCert, now) {
		return nil
	}
	return newServer(f, caCert, caKey, now)
}

func newCA(f Files, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"apgstack"}, CommonName: "apgstack local twin CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create CA certificate: %w", err)
	}
	if err := writePair(f.CA, f.CAKey, der, key); err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func newServer(f Files, ca *x509.Certificate, caKey *ecdsa.PrivateKey, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Organization: []string{"apgstack"}, CommonName: dnsNames()[0]},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(serverValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     dnsNames(),
		IPAddresses:  ipAddresses(),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("create server certificate: %w", err)
	}
	return writePair(f.Cert, f.Key, der, key)
}

func serverValid(f Files, ca *x509.Certificate, now time.Time) bool {
	data, err := os.ReadFile(f.Cert)
	if err != nil {
		return false
	}
	if _, err := os.Stat(f.Key); err != nil {
		return false
	}
	cert, err := parseCert(data)
	if err != nil || now.Add(renewBefore).After(cert.NotAfter) || cert.CheckSignatureFrom(ca) != nil {
		return false
	}
	// A certificate made before a name was added (::1 came later) is renewed, under the same CA.
	ips := ipAddresses()
	if !slices.Equal(cert.DNSNames, dnsNames()) || len(cert.IPAddresses) != len(ips) {
		return false
	}
	for i, ip := range ips {
		if !cert.IPAddresses[i].Equal(ip) {
			return false
		}
	}
	return true
}

func loadPair(certFile, keyFile string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cdata, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, err
	}
	kdata, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, err
	}
	cert, err := parseCert(cdata)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", certFile, err)
	}
	block, _ := pem.Decode(kdata)
	if block == nil {
		return nil, nil, fmt.Errorf("%s: no PEM key", keyFile)
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", keyFile, err)
	}
	return cert, key, nil
}

func parseCert(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

func writePair(certFile, keyFile string, der []byte, key *ecdsa.PrivateKey) error {
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("marshal key: %w", err)
	}
	if err := writeFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	return writeFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// writeFile writes atomically with the given mode (a key is never readable by others, not even
// for a moment).
func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}
