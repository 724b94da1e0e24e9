#!/usr/bin/env bash
# Start the Docker engine (Debian's docker.io) when none answers, and wait until it does.
#
# Usage: scripts/dockerd.sh        (CI runs it from .ci/run; idempotent)
# The engine's log goes to ${DOCKERD_LOG:-/tmp/dockerd.log}. On a machine with systemd the
# packaged service is used instead of a hand-started daemon.
set -euo pipefail

# Debian's 20.10 client: it has BuildKit built in (a newer client elsewhere on PATH may lack
# the buildx plugin that DOCKER_BUILDKIT=1 needs).
docker_cli="${DOCKER:-/usr/bin/docker}"
log() { echo "dockerd.sh: $*" >&2; }

if "$docker_cli" info >/dev/null 2>&1; then
  exit 0
fi
command -v dockerd >/dev/null || { log "dockerd not found: apt-get install docker.io"; exit 1; }
[[ $(id -u) == 0 ]] || { log "starting dockerd needs root (or: sudo $0)"; exit 1; }

if [[ -d /run/systemd/system ]] && systemctl start docker 2>/dev/null; then
  log "started the docker service"
else
  logfile="${DOCKERD_LOG:-/tmp/dockerd.log}"
  log "starting dockerd (log: $logfile)"
  # setsid: the daemon outlives this script and the CI step that ran it.
  setsid dockerd >"$logfile" 2>&1 < /dev/null &
fi

for _ in $(seq 1 60); do
  if "$docker_cli" info >/dev/null 2>&1; then
    log "engine ready: $("$docker_cli" version --format '{{.Server.Version}}')"
    exit 0
  fi
  sleep 1
done
log "dockerd did not answer within 60s; see ${DOCKERD_LOG:-/tmp/dockerd.log}"
exit 1
