"""Real kapacitord, influxd and the entrypoint as child processes, on free loopback ports,
without Docker.

The demo, the samples, the benchmarks, faultkit and the test bed all start their servers
this way; kapacitor.conf comes from the renderer and template the image uses. Also here:
a UDF script run as Kapacitor runs it (udf_process) and the one way to wait for a
condition (polling.wait_for).
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The checkout: its udfs/, tick_scripts/, config/ and models/ are what the servers run."""
