#!/usr/bin/env bash
# Everything `make demo` and `make test` need on a Debian machine. Idempotent: once done, a
# run only checks (about a second).
#
#   1. Debian packages: installed with apt-get when run as root; otherwise the exact command
#      is printed and the script stops before any long step.
#   2. .venv with the project installed into it as a package (pip install -e .) and the
#      packages of requirements-dev.txt.
#   3. kapacitord at the version pinned in tools/kapacitor/go.mod
#      (scripts/install_kapacitor.sh; minutes the first time, with progress every 15 s).
#   4. test only: telegraf (scripts/install_telegraf.sh), helm (scripts/install_helm.sh), the
#      Docker engine (scripts/dockerd.sh) and the local base images (scripts/base_images.sh),
#      for the image, stack and chart tests.
#
# Usage: scripts/setup.sh venv|demo|test   (venv: step 2 only; test adds docker-compose)
set -euo pipefail
cd "$(dirname "$0")/.."
purpose=${1:-demo}
venv=${VENV:-.venv}
started=$SECONDS
say() { echo "setup: $*" >&2; }
# shellcheck source=scripts/progress.sh
source scripts/progress.sh

kapacitord_built() { bash scripts/install_kapacitor.sh --check >/dev/null 2>&1; }

# go >= 1.21 fetches the Go release go.mod pins (GOTOOLCHAIN=auto, from the module proxy).
go_usable() {
  local v
  v=$(go env GOVERSION 2>/dev/null) || return 1
  v=${v#go}
  [[ ${v%%.*} -gt 1 || ( ${v%%.*} -eq 1 && $(echo "$v" | cut -d. -f2) -ge 21 ) ]]
}

# --- 1. what is missing, all of it reported before anything long starts
debs=()
python3 -c "import ensurepip, venv" 2>/dev/null || debs+=(python3-venv)
if [[ $purpose != venv ]]; then
  command -v influxd >/dev/null || debs+=(influxdb)
  if ! kapacitord_built; then
    command -v cc >/dev/null || debs+=(gcc)   # cgo: flux links a C/Rust library
  fi
fi
if [[ $purpose == test ]]; then
  command -v docker-compose >/dev/null || debs+=(docker-compose)
  # the image tests: Debian's engine (scripts/dockerd.sh starts it) and the base-image builder
  command -v dockerd >/dev/null || debs+=(docker.io)
  command -v debootstrap >/dev/null || debs+=(debootstrap)
fi

toolchains=()
if [[ $purpose != venv ]] && ! kapacitord_built; then
  go_usable || toolchains+=("Go >= 1.21 (Debian 12's golang-go is 1.19): install it from \
go.dev/dl and put it on PATH; the build then fetches the Go release tools/kapacitor/go.mod pins")
  command -v cargo >/dev/null || toolchains+=("cargo (Rust; flux, linked into kapacitord, \
has a Rust library): install it with rustup and put ~/.cargo/bin on PATH")
fi

if ((${#toolchains[@]})); then
  say "kapacitord is built from source, which needs:"
  printf '    %s\n' "${toolchains[@]}" >&2
fi
if ((${#debs[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    ((${#toolchains[@]})) && exit 1
    say "installing Debian packages: ${debs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${debs[@]}" >/dev/null
    # Debian's influxdb may start its own influxd on :8086; the demo and tests start theirs
    # on free ports, so it is stopped rather than left running as a surprise.
    if [[ " ${debs[*]} " == *" influxdb "* ]]; then
      (service influxdb stop || true) >/dev/null 2>&1
    fi
  else
    say "missing Debian packages; run this, then this command again:"
    echo "    sudo apt-get install -y ${debs[*]}" >&2
    exit 1
  fi
fi
((${#toolchains[@]})) && exit 1

# --- 2. the project's virtualenv
stamp="$venv/.installed"
if [[ ! -f $stamp || pyproject.toml -nt $stamp || conda_requirements.txt -nt $stamp \
      || requirements-dev.txt -nt $stamp ]]; then
  [[ -x $venv/bin/python ]] || python3 -m venv "$venv"
  : >"$venv/pip.log"
  progress_run setup "$venv/pip.log" \
    "installing the project and its Python packages into $venv (1-3 minutes)" \
    "$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off \
    -r requirements-dev.txt -e .
  touch "$stamp"
fi

# --- 3. kapacitord
if [[ $purpose != venv ]]; then
  bash scripts/install_kapacitor.sh >/dev/null
fi

# --- 4. for the image tests: telegraf, the Docker engine and the local base images
#        (each cached: the binary in ~/.cache/kapacitor-ml-udfs, the images in the engine)
if [[ $purpose == test ]]; then
  bash scripts/install_telegraf.sh >/dev/null
  # helm for the chart tests (tests/test_helm.py): about 4.5 minutes once, then cached
  bash scripts/install_helm.sh >/dev/null
  bash scripts/dockerd.sh
  bash scripts/base_images.sh
fi
say "ready ($((SECONDS - started)) s)"
