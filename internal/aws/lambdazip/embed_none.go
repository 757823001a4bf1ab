//go:build !apgstack_release

package lambdazip

// embeddedZip is empty outside release builds: the zip is built from source.
func embeddedZip() []byte { return nil }
