"""No foreign pickle is ever loaded: a `model` option reaches only verified files of $MODELS_DIR.

Each case names, through the real UDF's Init, a pickle whose loading would create a marker file,
by a route a TICKscript author could take. The control case proves the pickle does write the
marker when it is loaded, so a route that let it through would fail its test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from faultkit.model_routes import evil_pickle, models_copy, routes, try_route
from mlkit.manifest import ModelError, load_pickle, resolve


@pytest.fixture
def evil(tmp_path: Path) -> tuple[Path, Path]:
    """An evil pickle outside the models directory with a manifest beside it that vouches for it."""
    return evil_pickle(tmp_path)


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A models directory with the shipped files, as $MODELS_DIR for this process and the UDFs."""
    directory = models_copy(tmp_path)
    monkeypatch.setenv("MODELS_DIR", str(directory))
    return directory


def test_control_the_payload_runs_when_a_manifest_vouches_for_it(evil, monkeypatch) -> None:
    path, marker = evil
    monkeypatch.setenv("MODELS_DIR", str(path.parent))
    load_pickle("evil.joblib")
    assert marker.exists()


@pytest.mark.parametrize("script", ["rfc_classifier.py"])  # ads_model takes no model file
def test_no_route_loads_a_foreign_pickle(script, evil, models) -> None:
    evil_path, marker = evil
    for route, name in routes(evil_path, models).items():
        result = try_route(script, route, name, models, marker)
        assert result.refused, route
        assert result.names_the_option, (route, result.error)
        assert not result.marker_written, f"{script}: the pickle ran by route {route!r}"


def test_resolve_names_the_option_and_the_models_directory(models) -> None:
    with pytest.raises(ModelError, match=r"^model: '/etc/passwd' must be a file name inside"):
        resolve("/etc/passwd")
    with pytest.raises(ModelError, match=r"^weights: '\.\./x' must be"):
        resolve("../x", option="weights")
    assert resolve("rfc.joblib") == models.resolve() / "rfc.joblib"
