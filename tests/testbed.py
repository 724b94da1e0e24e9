"""The test bed: pytest fixtures around localstack's real kapacitord and influxd.

Each server runs on free loopback ports with its own temporary directories and
is stopped at the end of the test (kapacitord) or session (influxd).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from kapacitorkit.conf import UdfFunction
from localstack import ROOT  # noqa: F401 - the checkout, for the tests that import it from here
from localstack.influxd import LocalInfluxd
from localstack.kapacitord import LocalKapacitord, kapacitor_bin_dir
from localstack.polling import wait_for  # noqa: F401 - the tests' one wait helper


@pytest.fixture(scope="session")
def kapacitor_bin() -> Path:
    """The pinned kapacitord's directory; a failed build fails the test loudly."""
    try:
        return kapacitor_bin_dir()
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory) -> Iterator[LocalInfluxd]:
    try:
        server = LocalInfluxd(tmp_path_factory.mktemp("influxd"))
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server
    server.stop()


@pytest.fixture
def kapacitord(kapacitor_bin, tmp_path) -> Iterator:
    """Factory: kapacitord(functions, influxdb_url=...) starts one; all stop at teardown."""
    started: list[LocalKapacitord] = []

    def start(functions: Sequence[UdfFunction], **kwargs) -> LocalKapacitord:
        server = LocalKapacitord(kapacitor_bin, tmp_path / f"k{len(started)}", functions, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
