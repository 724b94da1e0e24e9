"""No foreign pickle is ever loaded: a `model` option reaches only verified files of $MODELS_DIR.

Each case names, through the real UDF's Init, a pickle whose loading would create a marker file,
by a route a TICKscript author could take. The control case proves the pickle does write the
marker when it is loaded, so a route that let it through would fail its test.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from pathlib import Path

import pytest

from mlkit.manifest import ModelError, load_pickle, resolve
from tests.agent_helpers import spawn
from tests.conftest import ROOT


class _Payload:
    """Unpickling this calls open(marker, 'w'): a visible side effect of running a pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def evil(tmp_path: Path) -> tuple[Path, Path]:
    """An evil pickle outside the models directory with a manifest beside it that vouches for it."""
    marker = tmp_path / "marker"
    outside = tmp_path / "outside"
    outside.mkdir()
    path = outside / "evil.joblib"
    path.write_bytes(pickle.dumps(_Payload(marker)))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    (outside / "manifest.json").write_text(json.dumps({"evil.joblib": digest}))
    return path, marker


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A models directory with the shipped files, as $MODELS_DIR for this process and the UDFs."""
    directory = tmp_path / "models"
    shutil.copytree(ROOT / "models", directory)
    monkeypatch.setenv("MODELS_DIR", str(directory))
    return directory


def test_control_the_payload_runs_when_a_manifest_vouches_for_it(evil, monkeypatch) -> None:
    path, marker = evil
    monkeypatch.setenv("MODELS_DIR", str(path.parent))
    load_pickle("evil.joblib")
    assert marker.exists()


def _routes(evil_path: Path, models: Path) -> dict[str, str]:
    """Every way a model option could name the evil file; sets up what each route needs."""
    (models / "link.joblib").symlink_to(evil_path)
    (models / "sub").mkdir()
    shutil.copy(evil_path, models / "sub" / "evil.joblib")
    shutil.copy(evil_path.parent / "manifest.json", models / "sub" / "manifest.json")
    shutil.copy(evil_path, models / "unlisted.joblib")
    shutil.copy(evil_path, models / "rfc.joblib")  # tampered: listed, but with other bytes
    climb = os.path.relpath(evil_path, models)
    return {
        "absolute path": str(evil_path),
        "climbing with ..": climb,
        "climbing inside a path": f"sub/../{climb}",
        "link out of the models directory": "link.joblib",
        "manifest beside the file": "sub/evil.joblib",
        "file not in the manifest": "unlisted.joblib",
        "tampered listed file": "rfc.joblib",
    }


@pytest.mark.parametrize("script", ["rfc_classifier.py", "ads_model.py"])
def test_no_route_loads_a_foreign_pickle(script, evil, models) -> None:
    evil_path, marker = evil
    for route, name in _routes(evil_path, models).items():
        client = spawn(script, env={**os.environ, "MODELS_DIR": str(models)})
        result = client.init({"model": name}, timeout=60)  # sklearn import: slow when busy
        client.close_input()
        client.wait()
        assert not result.success, route
        assert result.error.startswith("model: ") or "model:" in result.error, (route, result.error)
        assert not marker.exists(), f"{script}: the pickle ran by route {route!r}"


def test_resolve_names_the_option_and_the_models_directory(models) -> None:
    with pytest.raises(ModelError, match=r"^model: '/etc/passwd' must be a file name inside"):
        resolve("/etc/passwd")
    with pytest.raises(ModelError, match=r"^weights: '\.\./x' must be"):
        resolve("../x", option="weights")
    assert resolve("rfc.joblib") == models.resolve() / "rfc.joblib"
