# Sourced by scripts/setup.sh and scripts/install_kapacitor.sh.
#
# progress_run PREFIX LOG PHASE CMD...: run CMD with its output appended to LOG and, every 15 s
# (PROGRESS_EVERY),
# print the phase, its elapsed time and CMD's latest output line on stderr, so a long step
# (pip, go, cargo) never runs in silence. On failure: the end of LOG, and status 1.
progress_run() {
  local prefix=$1 log=$2 phase=$3
  shift 3
  local started=$SECONDS
  echo "$prefix: $phase" >&2
  "$@" >>"$log" 2>&1 &
  local every=${PROGRESS_EVERY:-15}
  local pid=$! next=$((SECONDS + every))
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if ((SECONDS >= next)); then
      echo "$prefix: $phase ... $((SECONDS - started)) s ($(tail -n 1 "$log" | cut -c1-70))" >&2
      next=$((SECONDS + every))
    fi
  done
  if ! wait "$pid"; then
    echo "$prefix: $phase failed; the end of $log:" >&2
    tail -n 40 "$log" >&2
    return 1
  fi
}
