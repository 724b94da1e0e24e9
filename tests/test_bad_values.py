"""Bad values cost only themselves: each bad point rejected with its own reason, every good
point scored exactly as in a clean run, in one write or one point a write."""

from __future__ import annotations

import math
import random

import pytest

from faultkit.protocol import BAD_VALUES, mixed_stream, sensor, telemetry
from tests.agent_helpers import point_requests, read_points, spawn, udf_module
from udfkit import udf_pb2
from udfkit.points import PointError, decoded, number

REASONS = {"missing": "is missing", "NaN": "not a finite number", "+inf": "not a finite number",
           "-inf": "not a finite number", "string": "is not a number",
           "bool": "is not a number", "huge": ""}


def _score(script: str, options: dict, points: list[udf_pb2.Point], *, one_by_one: bool,
           expect: int) -> list[udf_pb2.Point]:
    client = spawn(script)
    assert client.init(options).success
    if one_by_one:
        out = []
        for point in points:
            client.send(point_requests([point]))
            if "fault" not in point.fieldsString or options.get("on_error") != "drop":
                out += read_points(client, 1)
    else:
        client.send(point_requests(points))
        out = read_points(client, expect, timeout=60)
    client.close_input()
    assert client.wait(timeout=10) == 0
    return out


@pytest.mark.slow
@pytest.mark.parametrize("one_by_one", [False, True], ids=["one write", "a point a write"])
def test_rfc_bad_values_are_rejected_each_with_its_reason_and_good_ones_unchanged(one_by_one):
    rng = random.Random(5)
    good = [telemetry(rng, t, f"m{t % 7}") for t in range(300 if one_by_one else 3000)]
    mixed = mixed_stream(good, "torque", bad_count=21 if one_by_one else 70)
    clean = _score("rfc_classifier.py", {}, mixed.good, one_by_one=False, expect=len(good))
    out = _score("rfc_classifier.py", {}, mixed.stream, one_by_one=one_by_one,
                 expect=len(mixed.stream))
    scored = [p for p in out if "fault" not in p.fieldsString]
    rejected = [p for p in out if "fault" in p.fieldsString]
    assert [(p.time, p.fieldsInt["prediction"], p.fieldsDouble["failure_probability"])
            for p in scored] == \
        [(p.time, p.fieldsInt["prediction"], p.fieldsDouble["failure_probability"])
         for p in clean]
    assert len(rejected) == len(mixed.bad)
    for point in rejected:
        kind = point.fieldsString["fault"]
        assert "prediction" not in point.fieldsInt, f"{kind} was scored"
        assert "torque" in point.fieldsString["error"]
        assert REASONS[kind] in point.fieldsString["error"], point.fieldsString["error"]
        assert "Input X" not in point.fieldsString["error"]


def test_rfc_never_scores_nan_in_any_feature():
    rng = random.Random(9)
    points = [telemetry(rng, t) for t in range(6)]
    for point, field in zip(points, ["air_temperature", "process_temperature",
                                     "rotational_speed", "torque", "tool_wear"], strict=False):
        point.fieldsDouble[field] = math.nan
    out = _score("rfc_classifier.py", {}, points, one_by_one=False, expect=6)
    assert ["prediction" in p.fieldsInt for p in out] == [False] * 5 + [True]
    assert all("not a finite number" in p.fieldsString["error"] for p in out[:5])


@pytest.mark.slow
@pytest.mark.parametrize("one_by_one", [False, True], ids=["one write", "a point a write"])
def test_ads_bad_values_are_dropped_and_every_series_scores_as_in_a_clean_run(one_by_one):
    rng = random.Random(7)
    n = 500 if one_by_one else 2400
    good = [sensor(rng, t, f"s{t % 3}") for t in range(n)]
    mixed = mixed_stream(good, "value", bad_count=21 if one_by_one else 140)
    options = {"learn": 150, "on_error": "drop"}
    clean = _score("ads_model.py", options, mixed.good, one_by_one=False, expect=len(good))
    out = _score("ads_model.py", options, mixed.stream, one_by_one=one_by_one,
                 expect=len(good))
    out = [p for p in out if "period_end" not in p.fieldsInt]
    clean = [p for p in clean if "period_end" not in p.fieldsInt]
    assert not [p for p in out if "fault" in p.fieldsString]
    assert [(p.group, p.time, p.fieldsDouble["anomaly_score"]) for p in out] == \
        [(p.group, p.time, p.fieldsDouble["anomaly_score"]) for p in clean]


def test_a_failing_call_costs_only_its_points_and_its_series_start_over():
    """The fleet core scores a call's series together: if it fails, that call's points are
    rejected with the reason and its series start over; series not in the call keep their
    state, and later calls score as usual."""
    from udfkit.options import parse_options

    AdsModel = udf_module("ads_model.py").AdsModel

    def handler():
        h = AdsModel()
        h.init(parse_options(AdsModel.options, []), None)
        return h

    rng = random.Random(3)
    points = [sensor(rng, t, f"s{t % 4}") for t in range(1200)]
    clean = handler()
    expected = {(p.group, p.time): p.fieldsDouble["anomaly_score"]
                for p in decoded(clean.points([_copy(p) for p in points]))
                if "period_end" not in p.fieldsInt}
    broken = handler()
    broken.points([_copy(p) for p in points[:400]])
    score = broken.detector.score_and_learn

    def overflow(*_args):
        broken.detector.score_and_learn = score  # fails once
        raise OverflowError("(34, 'Numerical result out of range')")

    broken.detector.score_and_learn = overflow
    failing = [p for p in points[400:600] if p.group in ("sensor=s1", "sensor=s2")]
    assert broken.points([_copy(p) for p in failing]) == []
    rejected = broken.take_rejected()
    assert len(rejected) == len(failing)
    assert all("OverflowError" in reason and "start over" in reason for _, reason in rejected)
    rest = [p for p in points[400:] if p not in failing]
    got = {(p.group, p.time): p.fieldsDouble["anomaly_score"]
           for p in decoded(broken.points([_copy(p) for p in rest]))
           if "period_end" not in p.fieldsInt}
    untouched = {k: v for k, v in got.items() if k[0] in ("sensor=s0", "sensor=s3")}
    assert untouched == {k: v for k, v in expected.items()
                         if k in untouched}, "series outside the failed call changed"
    assert len(untouched) == 400
    restarted = [v for k, v in sorted(got.items()) if k[0] == "sensor=s1"]
    assert restarted[:64] == [0.0] * 64, "a series of the failed call learns again"


def _copy(point: udf_pb2.Point) -> udf_pb2.Point:
    copy = udf_pb2.Point()
    copy.CopyFrom(point)
    return copy


@pytest.mark.parametrize("kind", sorted(BAD_VALUES))
def test_number_rejects_every_bad_value_by_name(kind):
    point = udf_pb2.Point()
    point.fieldsDouble["v"] = 1.0
    from faultkit.protocol import spoil

    bad = spoil(point, "v", kind)
    if kind == "huge":
        assert number(bad, "v") == 1e308  # finite: only a limit refuses it
        with pytest.raises(PointError, match=r"'v' is 1e\+308, out of range"):
            number(bad, "v", limit=1e150)
        return
    with pytest.raises(PointError, match=f"field 'v' {REASONS[kind]}|'v' is .*{REASONS[kind]}"):
        number(bad, "v")
