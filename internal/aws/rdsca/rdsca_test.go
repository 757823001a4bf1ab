package rdsca_test

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/apgstack/apgstack/internal/aws/rdsca"
)

func TestBundle(t *testing.T) {
	rest := rdsca.PEM()
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatalf("certificate %d: %v", len(certs), err)
		}
		certs = append(certs, c)
	}
	if len(certs) < 10 {
		t.Fatalf("%d certificates in the bundle, want the RDS CAs of every Region", len(certs))
	}
	// The bundle must hold the current global roots (rds-ca-rsa2048-g1 and friends), valid now.
	valid := 0
	for _, c := range certs {
		if !c.IsCA || !strings.Contains(c.Subject.String(), "Amazon RDS") {
			t.Errorf("unexpected certificate %s", c.Subject)
		}
		if time.Now().Before(c.NotAfter) && strings.Contains(c.Subject.CommonName, "Amazon RDS us-east-1 Root CA RSA2048 G1") {
			valid++
		}
	}
	if valid == 0 {
		t.Error("no valid Amazon RDS us-east-1 Root CA RSA2048 G1 in the bundle")
	}
	if rdsca.Version() == "" || rdsca.Pool() == nil {
		t.Error("version or pool missing")
	}
}
