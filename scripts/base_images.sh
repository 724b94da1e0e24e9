#!/usr/bin/env bash
# Build the local stand-ins for the official images the Dockerfiles and docker-compose.yml
# name, from Debian's archive and the project's own kapacitord/telegraf builds, for machines
# that reach no container registry. Each is built only when its tag is missing from the local
# image store (which is the cache); with Docker Hub, never run this.
#
# Usage: scripts/base_images.sh [kapacitor|influxdb|mosquitto|python|telegraf ...]
#        (no argument: all of them). deploy/base-images/README.md lists what each holds.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
docker="${DOCKER:-/usr/bin/docker}"
export DOCKER_BUILDKIT=1
stand_ins="$here/deploy/base-images"
base=kapacitor-ml-udfs/debian-minbase:bookworm
log() { echo "base_images: $*" >&2; }

has_image() { "$docker" image inspect "$1" >/dev/null 2>&1; }

# The tags are read from the files that use them, so there is one place to change a version.
compose_image() {
  awk -v name="$1" '$1 == "image:" && index($2, name ":") == 1 { print $2; exit }' \
    "$here/docker-compose.yml"
}
kapacitor_tag() {
  local v
  v="$(awk '$1=="require" && $2=="github.com/influxdata/kapacitor" {print $3}' \
    "$here/tools/kapacitor/go.mod")"
  echo "kapacitor:${v#v}"
}
python_tag() { awk 'toupper($1) == "FROM" { print $2; exit }' "$here/simulator/Dockerfile"; }

# Debian's archive as this machine reaches it (deb822 sources, else the default mirror).
apt_uri() {
  local suite_re="$1" default="$2"
  awk -v re="$suite_re" '/^URIs:/ { uri = $2 } /^Suites:/ && $0 ~ re { print uri; exit }' \
    /etc/apt/sources.list.d/debian.sources 2>/dev/null | grep . || echo "$default"
}

build_debian_base() {
  has_image "$base" && return 0
  command -v debootstrap >/dev/null || { log "debootstrap is required: apt-get install debootstrap"; exit 1; }
  local mirror security rootfs
  mirror="$(apt_uri 'bookworm( |$)' http://deb.debian.org/debian)"
  security="$(apt_uri 'bookworm-security' http://deb.debian.org/debian-security)"
  rootfs="$(mktemp -d)"
  log "debootstrap bookworm from $mirror"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >&2
  cat > "$rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
SOURCES
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/tmp/*
  # An imported image has no ENV or CMD of its own.
  tar -C "$rootfs" -c . | "$docker" import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["bash"]' - "$base" >/dev/null
  rm -rf "$rootfs"
}

# build TAG DIR [FILE...]: docker build of deploy/base-images/DIR, with FILEs added to the context.
build() {
  local tag="$1" dir="$2" context
  shift 2
  if has_image "$tag"; then
    log "$tag: present"
    return 0
  fi
  build_debian_base
  context="$(mktemp -d)"
  cp -a "$stand_ins/$dir/." "$context/"
  [[ $# -gt 0 ]] && cp "$@" "$context/"
  local started=$SECONDS
  "$docker" build --quiet -t "$tag" "$context" >/dev/null
  rm -rf "$context"
  log "$tag: built in $((SECONDS - started))s"
}

build_one() {
  case "$1" in
    kapacitor)
      local bin
      bin="$(bash "$here/scripts/install_kapacitor.sh")"
      build "$(kapacitor_tag)" kapacitor "$bin/kapacitord" "$bin/kapacitor" ;;
    influxdb) build "$(compose_image influxdb)" influxdb ;;
    mosquitto) build "$(compose_image eclipse-mosquitto)" mosquitto ;;
    python) build "$(python_tag)" python ;;
    telegraf)
      build "$(compose_image telegraf)" telegraf "$(bash "$here/scripts/install_telegraf.sh")" ;;
    *) log "unknown image $1 (kapacitor, influxdb, mosquitto, python, telegraf)"; exit 2 ;;
  esac
}

"$here/scripts/dockerd.sh"
for name in "${@:-kapacitor influxdb mosquitto python telegraf}"; do
  for one in $name; do build_one "$one"; done
done
