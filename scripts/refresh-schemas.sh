#!/usr/bin/env bash
# Refresh cft/schema/schemas.zip, the CloudFormation resource provider schemas `apgstack validate`
# checks resource properties against. They are the CloudFormation registry's own schemas, as
# carried by the Go module github.com/aws-cloudformation/rain under internal/aws/cfn/schemas
# (the registry itself needs AWS credentials and a network path to AWS).
#
# Usage: scripts/refresh-schemas.sh [version]   (default: latest)
set -euo pipefail

version="${1:-latest}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/cft/schema"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# A throwaway module, so the download touches neither this module's go.mod nor go.sum.
(cd "$work" && go mod init refresh-schemas >/dev/null 2>&1 &&
	go mod download -json "github.com/aws-cloudformation/rain@$version" >"$work/download.json")
dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' "$work/download.json")"
resolved="$(sed -n 's/^[[:space:]]*"Version": "\(.*\)",$/\1/p' "$work/download.json")"
if [ -z "$dir" ] || [ -z "$resolved" ] || [ ! -d "$dir/internal/aws/cfn/schemas" ]; then
	echo "refresh-schemas: no schemas in github.com/aws-cloudformation/rain@$version" >&2
	exit 1
fi

(cd "$root" && go run ./cft/schema/internal/mkarchive -src "$dir/internal/aws/cfn/schemas" -out "$out/schemas.zip")
printf '%s\n' "$resolved" >"$out/VERSION"
echo "cft/schema: github.com/aws-cloudformation/rain $resolved ($(du -h "$out/schemas.zip" | cut -f1))" >&2
