"""Drop-in for Kapacitor's own example UDFs (udf/agent/examples: moving_avg, outliers, mirror).

A TICKscript written for those examples runs unchanged on ours (the function name aside)
and gives the same output, checked through real kapacitord into real influxd:

- moving_avg: options field, size, as (default `avg`); a point from the first value on,
  carrying the mean of what the group has so far (at most `size` values) in place of the
  point's fields; tags kept.
- outliers: options field, scale (1.5); each batch keeps only its outliers, unmodified;
  quartiles as the example's code computes them (`quartiles('halves')`: as its README says).
- mirror: every point unchanged (also tests/test_kapacitor_mirror.py).

Our earlier defaults stay behind options (full_window, keep_fields, quartiles).
"""

from __future__ import annotations

import time

import pytest

from localstack.kapacitord import udf_function
from tests.testbed import wait_for

pytestmark = [pytest.mark.kapacitor, pytest.mark.influxdb]
DBRP = [{"db": "telemetry", "rp": "autogen"}]
OUT_DB = "examples"


def stream_to_influx(udf_call: str, measurement: str, window: str = "") -> str:
    return f"""
stream
    |from()
        .measurement('m')
        .groupBy('sensor'){window}
    {udf_call}
    |influxDBOut()
        .database('{OUT_DB}')
        .retentionPolicy('autogen')
        .measurement('{measurement}')
"""


def started(kapacitord, influxdb, tasks: dict[str, str], *functions):
    influxdb.query(f'DROP DATABASE "{OUT_DB}"')
    influxdb.query(f'CREATE DATABASE "{OUT_DB}"')
    kap = kapacitord(list(functions), influxdb_url=influxdb.url)
    for name, script in tasks.items():
        kap.api.define_task(name, script, DBRP, enabled=True)
        assert kap.api.wait_task(name)["executing"], kap.log_text()[-2000:]
    return kap


def rows(influxdb, measurement: str, count: int) -> list[dict]:
    """Every row of a measurement once there are `count` of them (the final answer)."""
    found = wait_for(lambda: len(r := influxdb.query(f"SELECT * FROM {measurement}",
                                                     OUT_DB)) >= count and r, timeout=20)
    assert found, f"fewer than {count} rows in {measurement}"
    time.sleep(0.5)  # anything beyond `count` would be a failure: let it arrive
    return influxdb.query(f"SELECT * FROM {measurement}", OUT_DB)


def test_moving_average_runs_a_moving_avg_tickscript_with_the_same_output(kapacitord, influxdb):
    kap = started(kapacitord, influxdb, {
        "example": stream_to_influx("@moving_average().field('value').size(3)", "avg"),
        "ours_before": stream_to_influx("@moving_average().field('value').size(3).as('mean')"
                                        ".full_window(TRUE).keep_fields(TRUE)", "avg_full"),
    }, udf_function("moving_average", "moving_average.py"))
    base = time.time_ns() - 60 * 10**9
    points = [("s1", 1.0), ("s1", 2.0), ("s2", 10.0), ("s1", 3.0), ("s2", 20.0), ("s1", 4.0),
              ("s1", 5.0)]
    kap.api.write("".join(f"m,sensor={s} value={v},n={i}i,note=\"x\" {base + i * 10**9}\n"
                          for i, (s, v) in enumerate(points)), db="telemetry")

    example = rows(influxdb, "avg", len(points))
    assert {k for row in example for k in row} == {"time", "sensor", "avg"}
    by_sensor = {s: [r["avg"] for r in example if r["sensor"] == s] for s in ("s1", "s2")}
    assert by_sensor["s1"] == pytest.approx([1.0, 1.5, 2.0, 3.0, 4.0])
    assert by_sensor["s2"] == pytest.approx([10.0, 15.0])

    full = rows(influxdb, "avg_full", 3)
    assert [r["mean"] for r in full] == pytest.approx([2.0, 3.0, 4.0])
    assert [r["value"] for r in full] == [3.0, 4.0, 5.0]
    assert {r["note"] for r in full} == {"x"}


def test_outliers_runs_an_outliers_tickscript_with_the_same_output(kapacitord, influxdb):
    window = "\n    |window()\n        .period(10s)\n        .every(10s)\n        .align()"
    kap = started(kapacitord, influxdb, {
        "example": stream_to_influx("@outliers().field('value').scale(1.5)", "out", window),
        "halves": stream_to_influx("@outliers().field('value').quartiles('halves')",
                                   "out_halves", window),
        "interpolated": stream_to_influx("@outliers().field('value').quartiles('interpolated')",
                                         "out_interp", window),
    }, udf_function("outliers", "outliers.py", "--mode", "batch"))
    # Two windows: in the first, 17 lies inside the median-of-halves fences [-6, 18] but
    # outside the interpolated ones [-4, 16]; in the second the README's halves and the
    # interpolated quartiles flag -9 and 30, the example's code (halves of 6 values, whose
    # medians it takes one place right: fences [-11.5, 28.5]) only 30.
    first = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 17]
    second = [-9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 17, 30]
    start = (time.time_ns() // 10**10 - 10) * 10**10
    lines = [f"m,sensor=a value={v},n={i}i {start + i * 5 * 10**8}" for i, v in enumerate(first)]
    lines += [f"m,sensor=a value={v},n={100 + i}i {start + 10**10 + i * 5 * 10**8}"
              for i, v in enumerate(second)]
    lines.append(f"m,sensor=a value=0 {start + 25 * 10**9}")  # closes the second window
    kap.api.write("\n".join(lines) + "\n", db="telemetry")

    example = rows(influxdb, "out", 1)
    assert [(r["value"], r["n"], r["sensor"]) for r in example] == [(30.0, 112, "a")]
    halves = rows(influxdb, "out_halves", 2)
    assert sorted((r["value"], r["n"], r["sensor"]) for r in halves) == [
        (-9.0, 100, "a"), (30.0, 112, "a")]
    interpolated = rows(influxdb, "out_interp", 3)
    assert sorted(r["value"] for r in interpolated) == [-9.0, 17.0, 30.0]


def test_mirror_passes_every_point_unchanged(kapacitord, influxdb):
    kap = started(kapacitord, influxdb, {"example": stream_to_influx("@mirror()", "mirrored")},
                  udf_function("mirror", "mirror.py"))
    base = time.time_ns() - 60 * 10**9
    sent = [(f"s{i % 2}", i + 0.25, i, f"t{i}", i % 2 == 0) for i in range(6)]
    kap.api.write("".join(f'm,sensor={s} value={v},n={n}i,label="{t}",ok={str(b).lower()} '
                          f"{base + i * 10**9}\n" for i, (s, v, n, t, b) in enumerate(sent)),
                  db="telemetry")
    got = rows(influxdb, "mirrored", len(sent))
    assert sorted((r["sensor"], r["value"], r["n"], r["label"], r["ok"]) for r in got) == \
        sorted(sent)
