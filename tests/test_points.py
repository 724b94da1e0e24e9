"""Fields added as encoded bytes (udfkit.points.FieldEncoder) decode as if set on the point."""

from __future__ import annotations

import pytest

from udfkit.points import Encoded, FieldEncoder, Point, as_fields, decoded


@pytest.mark.parametrize("flag", [False, True])
@pytest.mark.parametrize("score", [0.0, 0.5, 1.0, 1e-300, -2.5])
def test_encoded_fields_decode_as_set_fields(score: float, flag: bool) -> None:
    point = Point(time=7, name="m", group="host=a", fieldsDouble={"value": 1.5},
                  fieldsBool={"is_anomaly": not flag})  # a value already there is replaced
    point.tags["host"] = "a"
    expected = Point()
    expected.CopyFrom(point)
    expected.fieldsDouble["anomaly_score"] = score
    expected.fieldsBool["is_anomaly"] = flag
    item = Encoded(point, FieldEncoder("anomaly_score", "is_anomaly")(score, flag))
    assert decoded([item]) == [expected]


def test_annotate_gives_each_point_its_own_fields() -> None:
    encoder = FieldEncoder("anomaly_score", "is_anomaly")
    points = [Point(time=t) for t in range(3)]
    out = encoder.annotate(points, [0.25, 1.0, 0.0], [False, True, False])
    out.extra[1] = as_fields(Point(fieldsString={"why": "spike"}))
    out.after[2] = [Point(time=9)]
    items = out.items()
    assert [type(i) for i in items] == [Encoded, Encoded, Encoded, Point]
    assert [i.fields for i in items[:3]] == [encoder(0.25, False),
                                             encoder(1.0, True) + out.extra[1],
                                             encoder(0.0, False)]
    sent = decoded(out)
    assert sent == decoded(items) and sent[3] == Point(time=9)
    assert sent[1].fieldsString["why"] == "spike" and sent[1].fieldsDouble["anomaly_score"] == 1.0
