#!/bin/bash
# As the official image: flags alone run kapacitord; the hostname Kapacitor reports defaults
# to the container's; root drops to the kapacitor user for kapacitord.
set -e
if [ "${1:0:1}" = '-' ]; then
    set -- kapacitord "$@"
fi
export KAPACITOR_HOSTNAME="${KAPACITOR_HOSTNAME:-$HOSTNAME}"
if [ "$1" = kapacitord ] && [ "$(id -u)" = 0 ]; then
    chown -R kapacitor:kapacitor /var/lib/kapacitor
    exec setpriv --reuid kapacitor --regid kapacitor --init-groups "$@"
fi
exec "$@"
