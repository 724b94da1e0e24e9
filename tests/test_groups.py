"""Per-group state with eviction (udfkit.groups) and the UDFs that forget idle groups."""

from __future__ import annotations

import random
from datetime import timedelta

from tests.agent_helpers import udf_module
from udfkit import snapshot, udf_pb2
from udfkit.client import option_values
from udfkit.groups import GroupTable
from udfkit.options import parse_options
from udfkit.points import decoded

S = 10**9


def test_slots_are_dense_and_an_idle_group_is_forgotten_by_stream_time() -> None:
    table = GroupTable(forget_after_ns=10 * S)
    assert [table.slot(g, 0) for g in ("a", "b", "c")] == [0, 1, 2]
    for t in range(1, 20):
        table.slots(["b", "c"], [t * S, t * S])
        gone = table.expire()
        if gone:
            break
    # "a" idle for over 10 s, found at a sweep (every forget_after / 8 of stream time)
    assert gone == [0] and 10 < t <= 10 + 10 / 8 + 1 and len(table) == 2
    assert table.slot("d", 12 * S) == 0, "a forgotten slot goes to the next new group"
    assert table.slot("a", 12 * S) == 3, "a group that comes back is a new one"


def test_forget_after_zero_never_forgets() -> None:
    table = GroupTable(forget_after_ns=0)
    table.slot("a", 0)
    table.slot("b", 10**18)
    assert table.expire() == [] and len(table) == 2


def test_churn_keeps_the_table_to_the_live_groups() -> None:
    """100,000 groups over the run, 1,000 at a time: slots are reused."""
    table, live = GroupTable(forget_after_ns=5 * S), 1000
    for t in range(400):
        table.slots([f"g{t * 250 + k}" for k in range(-750, 250) if t * 250 + k >= 0],
                    [t * S] * min(live, t * 250 + 250))
        table.expire()
    assert table.capacity < 3 * live


def test_a_table_restores_its_groups_and_times() -> None:
    table = GroupTable(forget_after_ns=10 * S)
    table.slots(["a", "b"], [3 * S, 7 * S])
    copy = GroupTable.restore(table.state(), 10 * S)
    assert copy.by_group == {"a": 0, "b": 1} and copy.last_ns == [3 * S, 7 * S]
    copy.slot("b", 15 * S)
    assert copy.expire() == [0]


def _handler(script: str, **options: object):
    cls = next(v for k, v in vars(udf_module(script)).items()
               if isinstance(v, type) and k in ("AdsModel", "MovingAverage"))
    handler = cls()
    given = [_option(k, v) for k, v in options.items()]
    handler.init(parse_options(cls.options, given), None)
    return handler


def _option(name: str, value: object) -> udf_pb2.Option:
    return udf_pb2.Option(name=name, values=option_values(value))


def _point(group: str, t: int, value: float) -> udf_pb2.Point:
    p = udf_pb2.Point(time=t, name="m", group=f"host={group}")
    p.tags["host"] = group
    p.fieldsDouble["value"] = value
    return p


def test_ads_model_forgets_an_idle_group_in_memory_and_in_its_snapshot() -> None:
    rng = random.Random(1)
    ads = _handler("ads_model.py", forget_after=timedelta(seconds=60))
    ads.points([_point(g, t * S, 20 + rng.gauss(0, 1)) for t in range(100) for g in "ab"])
    ads.points([_point("b", t * S, 20 + rng.gauss(0, 1)) for t in range(100, 200)])
    header, _ = snapshot.unpack_arrays(ads.state())  # a snapshot forgets first
    assert header["groups"]["keys"] == ["host=b"] and header["series"] == 1
    assert set(ads.groups.by_group) == {"host=b"}
    back = decoded(ads.points([_point("a", 200 * S, 21.0)]))
    assert back[0].fieldsDouble["anomaly_score"] == 0.0, "a returning group learns again"


def test_moving_average_forgets_an_idle_group() -> None:
    mavg = _handler("moving_average.py", field="value", size=3,
                    forget_after=timedelta(seconds=60))
    for t, g in ((0, "a"), (1, "a"), (2, "b"), (100, "b")):
        mavg.point(_point(g, t * S, 10.0 * (t + 1)))
    assert set(mavg.groups.by_group) == {"host=b"}
    again = mavg.point(_point("a", 101 * S, 5.0))
    assert again.fieldsDouble["avg"] == 5.0, "the old window is gone"
    state = mavg.state()
    assert sorted(state["windows"]) == ["host=a", "host=b"]  # a new group again
