#!/usr/bin/env bash
# Build telegraf at the version pinned in tools/telegraf/go.mod (the tag docker-compose.yml
# names), with only the plugins deploy/telegraf/telegraf.conf uses, and cache it outside git.
#
# Usage: scripts/install_telegraf.sh   (prints the binary's path on stdout)
# Cache: $KAPACITOR_CACHE (default ~/.cache/kapacitor-ml-udfs), one folder per version.
# Telegraf's own custom builds work the same way: the `custom` build tag leaves every plugin
# out, and one tag per plugin brings it back.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
mod_dir="$here/tools/telegraf"
version="$(awk '$1=="require" && $2=="github.com/influxdata/telegraf" {print $3}' "$mod_dir/go.mod")"
cache="${KAPACITOR_CACHE:-$HOME/.cache/kapacitor-ml-udfs}"
# The plugins of deploy/telegraf/telegraf.conf and of the shard router (deploy/telegraf/router.conf,
# made by scripts/shards.py: the starlark processor and, on Kubernetes, the InfluxDB listener);
# tests/test_container_files.py checks they agree.
plugins="inputs.influxdb_listener,inputs.mqtt_consumer,outputs.influxdb,parsers.influx,processors.starlark"
# The folder names the plugin set, so a changed list is a new build rather than a stale binary.
bin="$cache/telegraf-$version-$(echo "$plugins" | md5sum | cut -c1-8)/telegraf"

if [[ -x "$bin" ]]; then
  echo "$bin"
  exit 0
fi

log() { echo "install_telegraf: $*" >&2; }
command -v go >/dev/null || { log "go is required"; exit 1; }

build_log="$cache/telegraf-build.log"
mkdir -p "$(dirname "$bin")"
: >"$build_log"
# shellcheck source=scripts/progress.sh
source "$here/scripts/progress.sh"
started=$SECONDS
build() {
  cd "$mod_dir"
  # Static: the binary runs in any base image. -mod=readonly: go.mod and go.sum are never
  # rewritten by a build (they list everything this build needs).
  export CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false"
  local ldflags="-s -w -X github.com/influxdata/telegraf/internal.Version=${version#v}"
  go build -tags "custom,$plugins" -ldflags "$ldflags" -o "$bin.tmp" \
    github.com/influxdata/telegraf/cmd/telegraf
}
progress_run install_telegraf "$build_log" \
  "building telegraf $version with $plugins (about 3 minutes once; log: $build_log)" build \
  || exit 1
mv "$bin.tmp" "$bin"
log "installed $("$bin" --version) in $((SECONDS - started)) s"
echo "$bin"
