"""Real kapacitord and influxd as child processes, on free loopback ports, without Docker.

The demo, the samples, the benchmarks and the test bed all start their servers
this way; kapacitor.conf comes from the renderer and template the image uses.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The checkout: its udfs/, tick_scripts/, config/ and models/ are what the servers run."""
