#!/bin/sh
# One command: this sample through the entrypoint and kapacitord (see README.md).
# The project's .venv (make venv) when there is one, else the python3 on PATH.
here=$(dirname "$0")
py="$here/../../.venv/bin/python"
[ -x "$py" ] || py=python3
exec "$py" "$here/../run_sample.py" "$here" "$@"
