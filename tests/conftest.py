"""Shared fixtures: the real kapacitord/influxd test bed lives in tests/testbed.py.

The project is installed as a package (``make venv``: ``pip install -e .``), so nothing here
touches sys.path. Every test that starts a server is marked ``server`` here, from the
fixtures it uses or its ``kapacitor``/``influxdb`` mark, so ``make check`` (``-m "not server"``)
never waits for a server a new test forgot to declare.
"""

import pytest

from localstack import ROOT  # noqa: F401 - the checkout, for the tests that import it from here

pytest_plugins = ["tests.testbed", "tests.dockerbed"]

SERVER_FIXTURES = {"kapacitor_bin", "kapacitord", "influxdb"}
DOCKER_FIXTURES = {"docker_engine", "kapacitor_image", "simulator_image"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & DOCKER_FIXTURES:
            item.add_marker(pytest.mark.docker)
        if (fixtures & SERVER_FIXTURES or item.get_closest_marker("kapacitor")
                or item.get_closest_marker("influxdb") or item.get_closest_marker("docker")):
            item.add_marker(pytest.mark.server)
