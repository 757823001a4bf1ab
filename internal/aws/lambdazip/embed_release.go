//go:build apgstack_release

package lambdazip

import _ "embed"

// The zip mkrelease wrote before the release build (.goreleaser.yaml).
//
//go:embed release/bootstrap-lambda.zip
var releaseZip []byte

func embeddedZip() []byte { return releaseZip }
