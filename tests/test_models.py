"""Shipped model artefacts: verified loading, metadata, reproducible training, F1 floor."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from localstack import ROOT
from mlkit import rfc
from mlkit.manifest import ModelError, load_pickle, sha256_file, write_manifest

MODELS = ROOT / "models"
DATA = ROOT / "training_data_sets"


@pytest.fixture
def model_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$MODELS_DIR with a copy of the shipped rfc model that tests may damage."""
    shutil.copy(MODELS / "rfc.joblib", tmp_path / "rfc.joblib")
    write_manifest(tmp_path, ["rfc.joblib"])
    monkeypatch.setenv("MODELS_DIR", str(tmp_path))
    return tmp_path


def test_import_is_light() -> None:
    code = (
        "import sys, mlkit.manifest, mlkit.rfc, mlkit.ads_config; "
        "bad = [m for m in ('numpy', 'sklearn', 'joblib', 'pandas') if m in sys.modules]; "
        "sys.exit(', '.join(bad) or None)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={},
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr


def test_shipped_manifest_loads_the_model() -> None:
    assert isinstance(load_pickle("rfc.joblib"), rfc.FailurePredictor)
    assert set(json.loads((MODELS / "manifest.json").read_text())) == {"rfc.joblib"}


def test_tampered_file_refused(model_dir: Path) -> None:
    path = model_dir / "rfc.joblib"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"^model: .*rfc\.joblib.*expected sha256"):
        load_pickle("rfc.joblib")


def test_missing_file_and_entry_refused(model_dir: Path) -> None:
    with pytest.raises(ModelError, match=r"not found: .*nope\.joblib"):
        load_pickle("nope.joblib")
    shutil.copy(model_dir / "rfc.joblib", model_dir / "other.joblib")
    with pytest.raises(ModelError, match=r"other\.joblib is not listed"):
        load_pickle("other.joblib")
    (model_dir / "manifest.json").unlink()
    with pytest.raises(ModelError, match="manifest not found"):
        load_pickle("rfc.joblib")


def test_metadata_matches_models() -> None:
    manifest = json.loads((MODELS / "manifest.json").read_text())
    meta = json.loads((MODELS / "rfc.json").read_text())
    assert meta["model_sha256"] == sha256_file(MODELS / "rfc.joblib") == manifest["rfc.joblib"]
    assert set(meta["versions"]) == {"python", "numpy", "sklearn", "joblib"}
    model = load_pickle("rfc.joblib")
    assert tuple(meta["features"]) == model.features == rfc.FEATURES
    assert tuple(meta["raw_features"]) == rfc.RAW_FEATURES
    assert meta["threshold"] == model.threshold
    assert meta["training_data"]["sha256"] == sha256_file(DATA / "ai4i2020.csv")


def test_shipped_rfc_f1_floor() -> None:
    raw, y = rfc.ai4i_raw(pd.read_csv(DATA / "ai4i2020.csv"))
    _, x_test, _, y_test = rfc.split(raw, y)
    metrics = rfc.evaluate(load_pickle("rfc.joblib"), x_test, y_test)
    assert metrics["f1"] >= 0.85, metrics


def _train(out: Path) -> dict:
    from mlkit.train import main

    assert main(["all", "--out-dir", str(out), "--n-estimators", "30"]) == 0
    return json.loads((out / "rfc.json").read_text())


def _load_from(directory: Path, name: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MODELS_DIR", str(directory))
    return load_pickle(name)


def test_training_is_reproducible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = _train(tmp_path / "a"), _train(tmp_path / "b")
    assert first["metrics"] == second["metrics"]
    raw, _ = rfc.ai4i_raw(pd.read_csv(DATA / "ai4i2020.csv"))
    labels_a, proba_a = _load_from(tmp_path / "a", "rfc.joblib", monkeypatch).predict(raw)
    labels_b, proba_b = _load_from(tmp_path / "b", "rfc.joblib", monkeypatch).predict(raw)
    assert np.array_equal(labels_a, labels_b) and np.array_equal(proba_a, proba_b)


def test_feature_matrix_shape_checked() -> None:
    with pytest.raises(ValueError, match="expected an"):
        rfc.feature_matrix(np.zeros((3, 5)))
    assert rfc.feature_matrix(np.ones((2, 6))).shape == (2, len(rfc.FEATURES))
