"""Shared fixtures: the real kapacitord/influxd test bed lives in tests/testbed.py."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT / "udfs", ROOT):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

pytest_plugins = ["tests.testbed", "tests.dockerbed"]
