#!/usr/bin/env bash
# Build the local base image (default local/debian:sid) with debootstrap: there is no
# container registry here, so `FROM debian:sid` cannot be pulled. Skips when present.
set -euo pipefail
image=${1:-local/debian:sid}
suite=${SUITE:-sid}
if docker image inspect "$image" >/dev/null 2>&1; then
  echo "[base-image] $image present" >&2; exit 0
fi
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
root=$(mktemp -d /var/tmp/webrtc-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "[base-image] debootstrap $suite from $mirror" >&2
debootstrap --variant=minbase "$suite" "$root" "$mirror" >/var/tmp/webrtc-debootstrap.log 2>&1 \
  || { tail -20 /var/tmp/webrtc-debootstrap.log >&2; exit 1; }
echo 'Acquire::Check-Valid-Until "false";' >"$root/etc/apt/apt.conf.d/99snapshot"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import - "$image" >/dev/null
echo "[base-image] imported $image" >&2
