#!/usr/bin/env bash
# Installs what apgstack's local twin and its tests need on Debian 12: PostgreSQL 15 with
# pgaudit, pgBackRest, and shellcheck for the bastion user-data tests. Needs root (or sudo).
set -euo pipefail

packages=(postgresql-15 postgresql-15-pgaudit postgresql-client-15 pgbackrest shellcheck)

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  sudo_cmd=(sudo)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all packages present" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update
"${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
