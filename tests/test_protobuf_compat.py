"""The committed udf_pb2.py works with every supported protobuf runtime (5.26 to 7.x).

`make test` installs the older runtimes under .cache/protobuf-<version> (make protobuf-compat);
the installed one is 7.x.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

VERSIONS = ["5.26.1", "6.33.6"]
PROBE = """
import sys
from google.protobuf import __version__
from udfkit.client import UdfClient
from udfkit import udf_pb2
client = UdfClient.spawn([sys.executable, "-u", sys.argv[1]])
assert client.init({}).success
point = udf_pb2.Point(time=7, name="m")
point.fieldsDouble["v"] = 1.5
client.send([udf_pb2.Request(point=point)])
echoed = client.recv().point
client.close_input()
assert client.wait() == 0
assert echoed == point, echoed
print(__version__)
"""


@pytest.mark.parametrize("version", VERSIONS)
def test_agent_round_trip_with_protobuf(version):
    runtime = ROOT / ".cache" / f"protobuf-{version}"
    assert runtime.is_dir(), f"{runtime} missing: run `make protobuf-compat`"
    env = {**os.environ, "PYTHONPATH": str(runtime)}  # this protobuf before the installed one
    done = subprocess.run([sys.executable, "-c", PROBE, str(ROOT / "udfs" / "mirror.py")],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == version
