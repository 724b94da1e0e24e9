#!/usr/bin/env bash
# RUSTC_WRAPPER for building flux: its crates `deny(warnings)`, and newer rustc
# versions add lints. RUSTFLAGS cannot cap them because the pkg-config wrapper
# builds with --target, which keeps RUSTFLAGS off host crates (build scripts).
rustc="$1"; shift
for arg in "$@"; do
  [[ "$arg" == --cap-lints* ]] && exec "$rustc" "$@"
done
exec "$rustc" "$@" --cap-lints=warn
