#!/bin/sh
# One command: this sample through the entrypoint and kapacitord (see README.md).
exec python "$(dirname "$0")/../run_sample.py" "$(dirname "$0")" "$@"
