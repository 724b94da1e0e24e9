"""The mirror UDF inside real kapacitord: stream, InfluxDB output, batch, errors, socket mode."""

from __future__ import annotations

import stat
import subprocess
import sys
import time

import pytest

from kapacitorkit.api import ApiError
from kapacitorkit.conf import UdfFunction
from localstack.kapacitord import udf_function
from tests.testbed import ROOT, wait_for

pytestmark = pytest.mark.kapacitor

STREAM_TICK = """
stream
    |from()
        .measurement('cpu')
    @mirror()
    |httpOut('out')
"""


def test_stream_points_pass_through_the_udf(kapacitord):
    kap = kapacitord([udf_function("mirror", "mirror.py")])
    kap.api.define_task("mirror_task", STREAM_TICK, [{"db": "telemetry", "rp": "autogen"}],
                        enabled=True)
    assert kap.api.wait_task("mirror_task")["executing"] is True
    base = 1_700_000_000_000_000_000
    kap.api.write("".join(f"cpu,host=a value={i}.5,n={i}i {base + i}\n" for i in range(50)),
                  db="telemetry")

    def mirror_node():
        stats = kap.api.task("mirror_task")["stats"]["node-stats"]
        return next(v for k, v in stats.items() if k.startswith("mirror"))

    # the last point is in httpOut only once the mirror has emitted all 50 (they trickle in)
    assert wait_for(lambda: mirror_node()["emitted"] == 50), (mirror_node(), kap.log_text()[-2000:])
    assert mirror_node()["collected"] == 50

    def last():
        rows = kap.api.http_out_rows("mirror_task", "out")
        return rows and rows[-1]["n"] == 49 and rows[-1]

    row = wait_for(last)
    assert row, kap.api.http_out("mirror_task", "out")
    series = kap.api.http_out("mirror_task", "out")["series"][0]
    assert series["name"] == "cpu" and series["tags"] == {"host": "a"}
    assert row["value"] == 49.5


@pytest.mark.influxdb
def test_stream_through_udf_into_influxdb(kapacitord, influxdb):
    influxdb.query('CREATE DATABASE "telemetry"')
    kap = kapacitord([udf_function("mirror", "mirror.py")], influxdb_url=influxdb.url)
    script = """
stream
    |from()
        .measurement('temp')
        .groupBy('sensor')
    @mirror()
    |influxDBOut()
        .database('telemetry')
        .retentionPolicy('autogen')
        .measurement('temp_mirrored')
        .precision('s')
"""
    kap.api.define_task("to_influx", script, [{"db": "telemetry", "rp": "autogen"}], enabled=True)
    assert kap.api.wait_task("to_influx")["executing"] is True
    now = int(time.time())
    lines = "".join(f"temp,sensor=s{i % 2} value={20 + i} {now - 100 + i}\n" for i in range(20))
    kap.api.write(lines, db="telemetry", precision="s")

    rows = wait_for(lambda: len(influxdb.query(
        "SELECT value, sensor FROM temp_mirrored", "telemetry")) == 20 and
        influxdb.query("SELECT value, sensor FROM temp_mirrored", "telemetry"))
    assert rows, kap.log_text()[-2000:]
    assert sorted(r["value"] for r in rows) == [20 + i for i in range(20)]
    assert {r["sensor"] for r in rows} == {"s0", "s1"}


def test_init_error_names_the_option(kapacitord):
    kap = kapacitord([udf_function("mirror", "mirror.py")])
    script = STREAM_TICK.replace("@mirror()", "@mirror().bogus(1)")
    with pytest.raises(ApiError) as refused:
        kap.api.define_task("bad", script, [{"db": "telemetry", "rp": "autogen"}], enabled=True)
    assert refused.value.status == 400
    assert 'no method or property "bogus"' in str(refused.value)


def test_socket_udf_inside_kapacitord_serves_two_tasks(kapacitord, tmp_path):
    path = tmp_path / "mirror.sock"
    server = subprocess.Popen([sys.executable, str(ROOT / "udfs" / "mirror.py"), "--socket",
                               str(path)])
    try:
        assert wait_for(path.exists, 10)
        assert stat.S_IMODE(path.stat().st_mode) == 0o660
        kap = kapacitord([UdfFunction("mirror", socket=str(path), timeout="10s")])
        for name in ("socket_a", "socket_b"):  # one connection per task node
            kap.api.define_task(name, STREAM_TICK, [{"db": "telemetry", "rp": "autogen"}],
                                enabled=True)
            assert kap.api.wait_task(name)["executing"] is True, kap.log_text()[-2000:]
        base = 1_700_000_000_000_000_000
        kap.api.write("".join(f"cpu,host=a value={i}.5,n={i}i {base + i}\n" for i in range(50)),
                      db="telemetry")

        def emitted(task: str) -> int:
            stats = kap.api.task(task)["stats"]["node-stats"]
            return next(v["emitted"] for k, v in stats.items() if k.startswith("mirror"))

        assert wait_for(lambda: emitted("socket_a") == 50 and emitted("socket_b") == 50), \
            kap.log_text()[-2000:]
        kap.api.set_status("socket_a", False)  # its connection closes; the other goes on
        kap.api.write(f"cpu,host=a value=99.5,n=99i {base + 99}\n", db="telemetry")
        assert wait_for(lambda: emitted("socket_b") == 51), kap.log_text()[-2000:]
        assert server.poll() is None
    finally:
        server.terminate()
        server.wait(timeout=10)
