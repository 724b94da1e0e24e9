"""Fault injection for the fault table (bench/faults.py) and the tests that run its cases small.

- ``protocol``: faults at the UDF protocol, no server: garbage frames, bad values, and the
  synthetic streams (AI4I telemetry, sensor waves) they are mixed into.
- ``runs``: faults through real kapacitord and the entrypoint (``localstack``): malformed
  line protocol, killed and hung UDFs, a killed kapacitord, a soak.
- ``model_routes``: foreign pickles by every route a ``model`` option could take.
- ``udfs/``: UDF scripts that misbehave on demand (``probe.py`` sleeps, fails or hangs;
  ``dying.py`` exits), for the agent's and the entrypoint's tests.
"""

from pathlib import Path

UDFS = Path(__file__).resolve().parent / "udfs"
PROBE = UDFS / "probe.py"
DYING = UDFS / "dying.py"
