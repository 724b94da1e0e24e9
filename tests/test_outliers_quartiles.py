"""The outliers drop-in's quartiles: what Kapacitor's example code computes, by default.

The example's median of an even count is shifted one place right, so its quartiles differ
from the ones its README describes (`quartiles('halves')`). Kapacitor's own server test
(tests/test_kapacitor_server_udfs.py) expects 5 outliers in its 20 values; the README's
quartiles give 3.
"""

from __future__ import annotations

import pytest

from tests.agent_helpers import udf_module

_OUTLIERS = udf_module("outliers.py")
QUARTILES, example_quartiles = _OUTLIERS.QUARTILES, _OUTLIERS.example_quartiles
hinge_quartiles = _OUTLIERS.hinge_quartiles

SERVER_TEST_DATA = [5, 6, 7, 13, 33, 35, 36, 45, 46, 47, 48, 50, 51, 52, 53, 54, 80, 85, 90,
                    100]


def outliers(values: list[float], method: str, scale: float = 1.5) -> list[float]:
    q1, q3 = QUARTILES[method](values)
    low, high = q1 - scale * (q3 - q1), q3 + scale * (q3 - q1)
    return [v for v in values if v < low or v > high]


@pytest.mark.parametrize(("method", "quartiles", "found"), [
    ("example", (35, 54), [5, 6, 85, 90, 100]),
    ("halves", (34.0, 53.5), [85, 90, 100]),
])
def test_the_server_tests_batch(method, quartiles, found):
    assert QUARTILES[method](SERVER_TEST_DATA) == quartiles
    assert outliers(SERVER_TEST_DATA, method) == found


def test_an_even_batch_of_four_keeps_the_example_s_lower_half_of_three():
    # lower half [0, 10, 11] (median 10), upper [12]: 0 lies below 10 - 1.5 * 2
    assert example_quartiles([12, 0, 11, 10]) == (10, 12)
    assert outliers([12, 0, 11, 10], "example") == [0]
    assert outliers([12, 0, 11, 10], "halves") == []


@pytest.mark.parametrize("size", [5, 6])
def test_where_the_example_reads_past_a_half_the_readme_s_halves_are_used(size):
    values = list(range(size))
    assert example_quartiles(values) == hinge_quartiles(values)


def test_batches_with_halves_of_odd_size_agree_with_the_readme():
    for size in (7, 11, 15, 19, 23):  # the shifted median differs only for an even count
        values = [v * v % 17 for v in range(size)]
        assert example_quartiles(values) == hinge_quartiles(values)
