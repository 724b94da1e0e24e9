#!/usr/bin/env bash
# Build helm at the version pinned in tools/helm/go.mod and cache it outside git, as
# scripts/install_kapacitor.sh does for kapacitord: the chart tests (tests/test_helm.py) run
# `helm lint --strict` and `helm template` with it. Nothing talks to a cluster.
#
# Usage: scripts/install_helm.sh           (prints the binary's path on stdout)
#        scripts/install_helm.sh --check   (never builds: the path if built, else status 1)
# Cache: $KAPACITOR_CACHE (default ~/.cache/kapacitor-ml-udfs), one folder per version.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
mod_dir="$here/tools/helm"
version="$(awk '$1=="require" && $2=="helm.sh/helm/v4" {print $3}' "$mod_dir/go.mod")"
cache="${KAPACITOR_CACHE:-$HOME/.cache/kapacitor-ml-udfs}"
bin="$cache/helm-$version/helm"

if [[ -x "$bin" ]]; then
  echo "$bin"
  exit 0
fi
[[ ${1:-} == --check ]] && exit 1

log() { echo "install_helm: $*" >&2; }
command -v go >/dev/null || { log "go is required"; exit 1; }
started=$SECONDS

# One build at a time per cache: a second caller waits, then finds the binary.
mkdir -p "$(dirname "$bin")"
exec 9>"$cache/.helm-build.lock"
if ! flock -n 9; then
  log "another build of helm $version is running; waiting for it"
  while ! flock -w 15 9; do log "still waiting ... $((SECONDS - started)) s elapsed"; done
fi
if [[ -x "$bin" ]]; then
  echo "$bin"
  exit 0
fi

build_log="$cache/helm-build.log"
: >"$build_log"
# shellcheck source=scripts/progress.sh
source "$here/scripts/progress.sh"
build() {
  cd "$mod_dir"
  # Static, and -mod=readonly: go.mod and go.sum are never rewritten by a build.
  export CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false"
  local ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$version"
  go build -trimpath -ldflags "$ldflags" -o "$bin.tmp" helm.sh/helm/v4/cmd/helm
}
progress_run install_helm "$build_log" \
  "building helm $version (a first build takes minutes on 2 cores; log: $build_log)" build \
  || exit 1
mv "$bin.tmp" "$bin"
log "installed $("$bin" version --short 2>/dev/null) in $((SECONDS - started)) s"
echo "$bin"
