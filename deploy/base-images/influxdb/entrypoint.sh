#!/bin/bash
# As the official 1.x image: flags alone run influxd; on the first start of an empty volume
# INFLUXDB_DB is created before influxd serves anyone.
set -e
if [ "${1:0:1}" = '-' ]; then
    set -- influxd "$@"
fi
if [ "$1" = influxd ] && [ -n "${INFLUXDB_DB:-}" ] && [ ! -e /var/lib/influxdb/meta/meta.db ]; then
    /init-influxdb.sh
fi
exec "$@"
