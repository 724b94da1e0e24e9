"""Kapacitor's own UDF server tests (server/server_test.go, 1.8.6) with our drop-ins.

TestServer_UDFStreamAgents (moving_avg), TestServer_UDFStreamAgentsSocket (mirror over a
socket) and TestServer_UDFBatchAgents (outliers) ported with their TICKscripts, function
names, data and expected httpOut as they are, against udfs/moving_average.py, mirror.py and
outliers.py in real kapacitord. What had to change:

- the batch test's InfluxDB is our real influxd instead of a fake that answers every query
  with the 20 values: they are written as 20 series (tag `n`) at one timestamp, so that one
  5 ms query window holds them all; the expected times are the stop times of the queries
  that read them, which only Kapacitor knows, so they are checked to lie just after it;
- the Go test shuffles the values with Go's generator; here Python's, with the same seeds.
"""

from __future__ import annotations

import datetime
import json
import random
import subprocess
import sys
import time

import pytest

from kapacitorkit.conf import UdfFunction
from localstack.kapacitord import udf_function
from localstack.polling import wait_for
from tests.conftest import ROOT

pytestmark = pytest.mark.kapacitor
DBRPS = [{"db": "mydb", "rp": "myrp"}]
NULL = {"series": None}


def define_then_enable(kap, script: str, task_type: str = "stream") -> None:
    """As the Go test: create the task disabled, then enable it; check it runs."""
    kap.api.define_task("testUDFTask", script, DBRPS, task_type=task_type, enabled=False)
    kap.api.set_status("testUDFTask", True)
    assert kap.api.wait_task("testUDFTask")["executing"], kap.log_text()[-3000:]


def http_out_becomes(kap, endpoint: str, expected: dict, timeout: float = 15.0) -> dict:
    """Poll the task's httpOut until it is `expected`; return what it last held."""
    last: dict = {}

    def matches() -> bool:
        nonlocal last
        last = kap.api.http_out("testUDFTask", endpoint)
        return last == expected

    wait_for(matches, timeout)
    return last


# -- TestServer_UDFStreamAgents ------------------------------------------------------------

MOVING_AVG_TICK = """stream
    |from()
        .measurement('test')
        .groupBy('group')
    @movingAvg()
        .field('value')
        .size(10)
        .as('mean')
    |window()
        .period(11s)
        .every(11s)
    |last('mean').as('mean')
    |httpOut('moving_avg')
"""

MOVING_AVG_POINTS = "".join(
    f"test,group=a value={a} {t:010d}\ntest,group=b value={b} {t:010d}\n"
    for t, (a, b) in enumerate([(1, 2)] * 10 + [(0, 1), (0, 0)]))

MOVING_AVG_EXPECTED = json.loads(
    '{"series":[{"name":"test","tags":{"group":"a"},"columns":["time","mean"],"values":'
    '[["1970-01-01T00:00:11Z",0.9]]},{"name":"test","tags":{"group":"b"},"columns":'
    '["time","mean"],"values":[["1970-01-01T00:00:11Z",1.9]]}]}')


def test_udf_stream_agents_moving_avg(kapacitord):
    kap = kapacitord([udf_function("movingAvg", "moving_average.py", timeout="1m")])
    define_then_enable(kap, MOVING_AVG_TICK)
    assert kap.api.http_out("testUDFTask", "moving_avg") == NULL
    kap.api.write(MOVING_AVG_POINTS, db="mydb", rp="myrp", precision="s")
    got = http_out_becomes(kap, "moving_avg", MOVING_AVG_EXPECTED)
    assert got == MOVING_AVG_EXPECTED, kap.log_text()[-3000:]


# -- TestServer_UDFStreamAgentsSocket --------------------------------------------------------

MIRROR_TICK = """stream
    |from()
        .measurement('test')
        .groupBy('group')
    @mirror()
    |window()
        .period(10s)
        .every(10s)
    |count('value')
    |httpOut('count')
"""

MIRROR_POINTS = "".join(f"test,group=a value={1 if t < 10 else 0} {t:010d}\n" for t in range(12))

MIRROR_EXPECTED = json.loads(
    '{"series":[{"name":"test","tags":{"group":"a"},"columns":["time","count"],"values":'
    '[["1970-01-01T00:00:10Z",10]]}]}')


def test_udf_stream_agents_socket_mirror(kapacitord, tmp_path):
    path = tmp_path / "mirror.py.sock"
    server = subprocess.Popen([sys.executable, "-u", str(ROOT / "udfs" / "mirror.py"),
                               "--socket", str(path)])
    try:
        assert wait_for(path.exists, 10), "the mirror socket server did not listen"
        kap = kapacitord([UdfFunction("mirror", socket=str(path), timeout="1m")])
        define_then_enable(kap, MIRROR_TICK)
        assert kap.api.http_out("testUDFTask", "count") == NULL
        kap.api.write(MIRROR_POINTS, db="mydb", rp="myrp", precision="s")
        got = http_out_becomes(kap, "count", MIRROR_EXPECTED)
        assert got == MIRROR_EXPECTED, kap.log_text()[-3000:]
    finally:
        server.terminate()
        server.wait(timeout=10)


# -- TestServer_UDFBatchAgents ---------------------------------------------------------------

OUTLIERS_TICK = """batch
    |query(' SELECT value from mydb.myrp.cpu ')
        .period(5ms)
        .every(5ms)
        .groupBy('count')
    @outliers()
        .field('value')
        .scale(1.5)
    |count('value')
    |httpOut('count')
"""

OUTLIER_DATA = [5, 6, 7, 13, 33, 35, 36, 45, 46, 47, 48, 50, 51, 52, 53, 54, 80, 85, 90, 100]
LEAD_NS = 300_000_000  # points are written this far ahead, so a query window is yet to come
PERIOD_NS = 5_000_000
ATTEMPTS = 3  # a loaded machine can skip a 5 ms window (Go's ticker drops ticks)


def outliers_batch(seed: int, count_tag: str, stamp: int) -> str:
    """The test's 20 values, shuffled with `seed`, as 20 series at one timestamp."""
    values = list(OUTLIER_DATA)
    random.Random(seed).shuffle(values)
    return "".join(f"cpu,count={count_tag},n={i:02d} value={v} {stamp}\n"
                   for i, v in enumerate(values))


def _ns(stamp: str) -> int:
    whole, _, frac = stamp.rstrip("Z").partition(".")
    moment = datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.UTC)
    return int(moment.timestamp()) * 10**9 + int((frac or "0").ljust(9, "0"))


def _series_by_tag(kap) -> dict[str, dict]:
    result = kap.api.http_out("testUDFTask", "count").get("series") or []
    return {s["tags"]["count"]: s for s in result}


def write_until_counted(kap, influxdb, seed: int, count_tag: str) -> int:
    """Write the group's batch ahead of time until a query window has read it; its stamp."""
    for _ in range(ATTEMPTS):
        stamp = time.time_ns() + LEAD_NS
        influxdb.write(outliers_batch(seed, count_tag, stamp), db="mydb", rp="myrp")
        if wait_for(lambda: count_tag in _series_by_tag(kap), 2.0):
            return stamp
        influxdb.query(f"DELETE FROM cpu WHERE \"count\" = '{count_tag}'", "mydb")
    pytest.fail(f"no query window read group count={count_tag} in {ATTEMPTS} tries:\n"
                f"{kap.log_text()[-3000:]}")


@pytest.mark.influxdb
def test_udf_batch_agents_outliers(kapacitord, influxdb):
    influxdb.query('DROP DATABASE "mydb"')
    influxdb.query('CREATE DATABASE "mydb"')
    influxdb.query('CREATE RETENTION POLICY "myrp" ON "mydb" DURATION INF REPLICATION 1')
    kap = kapacitord([udf_function("outliers", "outliers.py", timeout="1m")],
                     influxdb_url=influxdb.url)
    define_then_enable(kap, OUTLIERS_TICK, task_type="batch")
    # The Go test's fake InfluxDB answers its first query with count=1, its second with 0.
    stamps = [write_until_counted(kap, influxdb, seed, tag) for seed, tag in ((1, "1"), (2, "0"))]

    got = kap.api.http_out("testUDFTask", "count")
    stops = [_ns(s["values"][0][0]) for s in got["series"]]
    for stop, stamp in zip(stops, stamps, strict=True):  # the window [stop - 5ms, stop) read it
        assert stamp < stop <= stamp + PERIOD_NS, (stop, stamp)
    times = [s["values"][0][0] for s in got["series"]]
    expected = json.loads(
        '{"series":[{"name":"cpu","tags":{"count":"1"},"columns":["time","count"],"values":'
        '[["STOP1",5]]},{"name":"cpu","tags":{"count":"0"},"columns":["time","count"],"values":'
        '[["STOP2",5]]}]}'.replace("STOP1", times[0]).replace("STOP2", times[1]))
    assert got == expected, kap.log_text()[-3000:]
