#!/usr/bin/env bash
# Build kapacitord and the kapacitor CLI at the version pinned in
# tools/kapacitor/go.mod and cache them outside git.
#
# Usage: scripts/install_kapacitor.sh           (prints the bin directory on stdout)
#        scripts/install_kapacitor.sh --check   (never builds: the bin directory if built, else status 1)
# Cache: $KAPACITOR_CACHE (default ~/.cache/kapacitor-ml-udfs), one folder per version.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
mod_dir="$here/tools/kapacitor"
version="$(awk '$1=="require" && $2=="github.com/influxdata/kapacitor" {print $3}' "$mod_dir/go.mod")"
cache="${KAPACITOR_CACHE:-$HOME/.cache/kapacitor-ml-udfs}"
bin_dir="$cache/kapacitor-$version/bin"

if [[ -x "$bin_dir/kapacitord" && -x "$bin_dir/kapacitor" ]]; then
  echo "$bin_dir"
  exit 0
fi
[[ ${1:-} == --check ]] && exit 1

log() { echo "install_kapacitor: $*" >&2; }
started=$SECONDS

build_log="$cache/build.log"
# shellcheck source=scripts/progress.sh
source "$here/scripts/progress.sh"
run() { progress_run install_kapacitor "$build_log" "$@" || exit 1; }

# One build at a time per cache: a second caller waits, then finds the binaries.
mkdir -p "$cache"
exec 9>"$cache/.build.lock"
if ! flock -n 9; then
  log "another build of kapacitor $version is running; waiting for it"
  while ! flock -w 15 9; do log "still waiting ... $((SECONDS - started)) s elapsed"; done
fi
if [[ -x "$bin_dir/kapacitord" && -x "$bin_dir/kapacitor" ]]; then
  echo "$bin_dir"
  exit 0
fi
: >"$build_log"

command -v go >/dev/null || { log "go is required"; exit 1; }
command -v cargo >/dev/null || { log "cargo is required (flux links a Rust library)"; exit 1; }

# flux's cgo directives call pkg-config for "flux"; influxdata's wrapper answers
# that by building libflux with cargo inside the flux module.
tool_dir="$cache/tools"
if [[ ! -x "$tool_dir/pkg-config" ]]; then
  run "building the pkg-config wrapper" \
    env GOBIN="$tool_dir" go install github.com/influxdata/pkg-config@v0.2.7
fi

log "building kapacitor $version: a first build takes 4-10 minutes on 2 cores (log: $build_log)"
rm -rf "$bin_dir.tmp" && mkdir -p "$bin_dir.tmp"
(
  cd "$mod_dir"
  export PKG_CONFIG="$tool_dir/pkg-config"
  # flux's crates deny warnings; newer rustc versions add lints.
  export RUSTC_WRAPPER="$here/scripts/rustc-cap-lints.sh"
  # flux pins an old toolchain in rust-toolchain; build with the installed one.
  export RUSTUP_TOOLCHAIN="${RUSTUP_TOOLCHAIN:-stable}"
  # -mod=readonly: the build never rewrites go.mod/go.sum; a missing checksum is an error.
  export GOFLAGS="-mod=readonly -buildvcs=false"
  ldflags="-X main.version=${version#v} -X main.branch=$version -X main.commit=go-module"
  run "downloading modules and compiling kapacitord (flux's Rust library through cargo)" \
    go build -ldflags "$ldflags" -o "$bin_dir.tmp/kapacitord" \
    github.com/influxdata/kapacitor/cmd/kapacitord
  run "compiling the kapacitor CLI" \
    go build -ldflags "$ldflags" -o "$bin_dir.tmp/kapacitor" github.com/influxdata/kapacitor/cmd/kapacitor
)
rm -rf "$bin_dir" && mv "$bin_dir.tmp" "$bin_dir"
log "installed $("$bin_dir/kapacitord" version 2>/dev/null | head -1) in $((SECONDS - started)) s"
echo "$bin_dir"
