#!/usr/bin/env bash
# Start (or restart) the Docker engine on a host with or without systemd.
#   dockerd.sh start    start dockerd when it is not answering (bootstrap-host.sh)
#   dockerd.sh restart  stop the running daemon and start it again (the fault tests:
#                       containers with a restart policy must come back on their own)
set -euo pipefail

log() { printf '[dockerd] %s\n' "$*" >&2; }
has_systemd() { command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; }

wait_answering() {
  for _ in $(seq 1 90); do docker info >/dev/null 2>&1 && return 0; sleep 1; done
  log "dockerd did not start; see /var/log/dockerd.log"
  return 1
}

start() {
  docker info >/dev/null 2>&1 && return 0
  if has_systemd; then
    systemctl start docker
  else
    log "starting dockerd"
    # its own session: a test run interrupted with ^C must not take the engine down with it
    setsid nohup dockerd >>/var/log/dockerd.log 2>&1 </dev/null &
  fi
  wait_answering
}

restart() {
  if has_systemd; then
    systemctl restart docker
    wait_answering
    return
  fi
  pid=$(pgrep -x dockerd | head -n1 || true)
  if [ -n "${pid}" ]; then
    log "stopping dockerd (pid ${pid})"
    kill -TERM "${pid}"
    for _ in $(seq 1 60); do kill -0 "${pid}" 2>/dev/null || break; sleep 1; done
    if kill -0 "${pid}" 2>/dev/null; then
      log "dockerd did not stop in 60 s"
      exit 1
    fi
  fi
  start
}

case "${1:-start}" in
  start) start ;;
  restart) restart ;;
  *) log "usage: $0 start|restart"; exit 2 ;;
esac
