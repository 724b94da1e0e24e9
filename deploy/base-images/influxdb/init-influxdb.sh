#!/bin/bash
# Create $INFLUXDB_DB with an influxd that listens on loopback only, then stop it.
set -euo pipefail
INFLUXDB_HTTP_BIND_ADDRESS=127.0.0.1:8086 INFLUXDB_HTTP_LOG_ENABLED=false influxd &
pid=$!
for _ in $(seq 1 100); do
    curl -sf -o /dev/null http://127.0.0.1:8086/ping && break
    sleep 0.2
done
curl -sf -o /dev/null -XPOST http://127.0.0.1:8086/query \
    --data-urlencode "q=CREATE DATABASE \"${INFLUXDB_DB}\""
echo "init-influxdb: created database ${INFLUXDB_DB}" >&2
kill "$pid"
wait "$pid" || true
