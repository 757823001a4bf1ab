#!/usr/bin/env bash
# Installs what apgstack's local twin and its tests need on Debian 12: PostgreSQL 15 with
# pgaudit, pgBackRest, nftables for the endpoints' kernel path, and shellcheck for the bastion
# user-data tests. Needs root (or sudo).
set -euo pipefail

packages=(postgresql-15 postgresql-15-pgaudit postgresql-client-15 pgbackrest nftables shellcheck)

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

# Installing postgresql-15 creates and, where services run, starts Debian's own "main" cluster on
# 5432 — the port of the twin's writer endpoint. A cluster that this run created holds no data:
# stop it and keep it from starting at boot. A cluster that was there before is left alone
# (`apgstack up` names it when 5432 is taken).
for p in "${missing[@]}"; do
  if [ "$p" = postgresql-15 ] && [ -f /etc/postgresql/15/main/start.conf ]; then
    "${sudo_cmd[@]}" pg_ctlcluster 15 main stop 2>/dev/null || true
    echo manual | "${sudo_cmd[@]}" tee /etc/postgresql/15/main/start.conf >/dev/null
    echo "install-deps: stopped Debian's new 15/main cluster on 5432 (start.conf: manual)" >&2
  fi
done
