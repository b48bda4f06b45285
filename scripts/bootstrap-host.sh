#!/usr/bin/env bash
# Install and start what the lab needs on a Debian 12/13 host, only where missing:
# the Docker engine, compose v2, debootstrap (for the local base image), SIPp, Node, promtool, shellcheck and Chromium
# (headless, driven by Playwright in the browser call tests).
# Idempotent: a second run changes nothing. Talks only to the Debian mirror.
set -euo pipefail

log() { printf '[bootstrap] %s\n' "$*" >&2; }
export DEBIAN_FRONTEND=noninteractive

need_pkgs=()
command -v dockerd >/dev/null 2>&1 || need_pkgs+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need_pkgs+=(debootstrap)
command -v sipp >/dev/null 2>&1 || need_pkgs+=(sip-tester)
command -v openssl >/dev/null 2>&1 || need_pkgs+=(openssl)
command -v make >/dev/null 2>&1 || need_pkgs+=(make)
command -v node >/dev/null 2>&1 || need_pkgs+=(nodejs npm)
command -v ss >/dev/null 2>&1 || need_pkgs+=(iproute2)
command -v curl >/dev/null 2>&1 || need_pkgs+=(curl)
command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium)
command -v promtool >/dev/null 2>&1 || need_pkgs+=(prometheus)  # promtool: the example alert rules are tested
command -v shellcheck >/dev/null 2>&1 || need_pkgs+=(shellcheck)  # make lint checks every shell script

apt_updated=0
apt_update() { [ "$apt_updated" = 1 ] || { apt-get update -qq; apt_updated=1; }; }

if [ "${#need_pkgs[@]}" -gt 0 ]; then
  log "installing: ${need_pkgs[*]}"
  apt_update
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# Compose v2 ("docker compose"). Debian 13 ships it as docker-compose; on Debian 12 that
# package is the old Python v1, so take the trixie .deb (depends only on libc6 >= 2.34).
if ! docker compose version >/dev/null 2>&1; then
  major=$(cut -d. -f1 /etc/debian_version)
  if [ "${major}" -ge 13 ] 2>/dev/null; then
    apt_update
    apt-get install -y -qq docker-compose >/dev/null
  else
    log "installing compose v2 from Debian trixie"
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    mirror=${mirror:-http://deb.debian.org/debian}
    cat >/etc/apt/sources.list.d/trixie-compose.sources <<SRC
Types: deb
URIs: ${mirror}
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n' >/etc/apt/preferences.d/trixie-compose
    cat >/etc/apt/apt.conf.d/99trixie-compose <<'CONF'
Acquire::Check-Valid-Until "false";
CONF
    apt-get update -qq -o Dir::Etc::sourcelist=/etc/apt/sources.list.d/trixie-compose.sources \
      -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download -qq docker-compose/trixie)
    dpkg -i "$tmp"/docker-compose_*.deb >/dev/null
    rm -rf "$tmp"
  fi
fi

# The Docker engine: no systemd here, so dockerd.sh starts it in the background.
bash "$(dirname "$0")/dockerd.sh" start
log "docker $(docker version --format '{{.Server.Version}}'), $(docker compose version --short)"
