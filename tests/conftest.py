"""Shared fixtures: the real kapacitord/influxd test bed lives in tests/testbed.py.

The project is installed as a package (``make venv``: ``pip install -e .``), so nothing here
touches sys.path.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

pytest_plugins = ["tests.testbed", "tests.dockerbed"]
