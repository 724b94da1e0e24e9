"""The mirror UDF inside real kapacitord: stream, InfluxDB output, batch, Init errors."""

from __future__ import annotations

import time

import pytest

from localstack.kapacitord import udf_function
from tests.testbed import wait_for

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
        series = (kap.api.http_out("mirror_task", "out").get("series") or [None])[0]
        row = series and dict(zip(series["columns"], series["values"][-1], strict=True))
        return row and row["n"] == 49 and (series, row)

    series, row = wait_for(last) or (None, None)
    assert row, kap.api.http_out("mirror_task", "out")
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
    with pytest.raises(Exception, match="bogus"):
        kap.api.define_task("bad", script, [{"db": "telemetry", "rp": "autogen"}], enabled=True)
