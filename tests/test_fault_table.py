"""The fault table's cases (bench/faults.py) with small counts, against real kapacitord and
the entrypoint."""

from __future__ import annotations

import pytest

from entrypoint.supervisor import HEALTHY_RESET
from faultkit import runs
from faultkit.collector import Collector
from localstack.kapacitord import udf_function

pytestmark = pytest.mark.kapacitor


@pytest.fixture
def points_stack(kapacitord):
    kap = kapacitord([udf_function("rfc_classifier", "rfc_classifier.py", timeout="20s"),
                      udf_function("ads_model", "ads_model.py", timeout="20s")])
    collector = Collector()
    yield kap, collector
    collector.close()


@pytest.mark.parametrize("per_write", [False, True], ids=["one write", "a point a write"])
@pytest.mark.parametrize("udf", ["rfc_classifier", "ads_model"])
def test_malformed_points_cost_only_themselves_through_kapacitor(points_stack, udf, per_write):
    kap, collector = points_stack
    run = runs.run_points(kap, collector, udf, good=400, bad=60, per_write=per_write,
                                timeout=90)
    assert run.deaths == 0
    assert run.refused_writes == run.refusable  # NaN, inf, 100 KB tags: HTTP 400 from Kapacitor
    assert run.bad_counted == run.bad and run.bad_scored == 0
    assert (run.good_out, run.changed) == (run.good, 0)
    if udf == "rfc_classifier":
        assert set(run.reasons) == set(runs.BAD_LP)
        assert all("torque" in reason for reason in run.reasons.values()), run.reasons


def test_a_killed_udf_executes_again_within_5_s_of_the_error(kapacitor_bin, tmp_path):
    run = runs.run_udf_kills(kapacitor_bin, tmp_path, count=2, gap=HEALTHY_RESET + 1.5)
    assert not run.failures, run.failures
    assert len(run.samples) == 2 and max(run.samples) <= 5.0, run.samples


def test_a_hung_handler_is_restarted_within_the_timeout_plus_15_s(kapacitor_bin, tmp_path):
    run = runs.run_hangs(kapacitor_bin, tmp_path, count=1)
    assert not run.failures, run.failures
    assert run.samples and max(run.samples) <= run.target, run.samples


def test_killed_kapacitord_ends_the_entrypoint_non_zero_within_5_s(kapacitor_bin, tmp_path):
    run = runs.run_kapacitord_kills(kapacitor_bin, tmp_path, count=1)
    assert not run.failures, run.failures
    assert run.samples and max(run.samples) <= 5.0, run.samples
