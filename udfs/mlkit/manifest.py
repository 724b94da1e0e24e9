"""Verified model loading: a model file is unpickled only if its SHA-256 is in the manifest.

joblib files are pickles, and unpickling runs code; the manifest (models/manifest.json,
``{"file name": "sha256 hex"}``) written by ``mlkit.train`` pins the exact bytes we trained.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

MANIFEST_NAME = "manifest.json"
DEFAULT_MODELS_DIR = Path(__file__).resolve().parent.parent.parent / "models"


def model_path(name: str) -> Path:
    """A model option's path: absolute as given, else under $MODELS_DIR (default: models/)."""
    import os

    path = Path(name)
    if path.is_absolute():
        return path
    return Path(os.environ.get("MODELS_DIR") or DEFAULT_MODELS_DIR) / path


class ModelError(Exception):
    """A model file could not be loaded safely."""


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(manifest: Path) -> dict[str, str]:
    """File name -> SHA-256 mapping; ModelError if missing or malformed."""
    if not manifest.is_file():
        raise ModelError(f"model manifest not found: {manifest}")
    try:
        data = json.loads(manifest.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"unreadable model manifest {manifest}: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelError(f"model manifest {manifest} is not a JSON object")
    return data


def write_manifest(directory: Path, names: list[str]) -> Path:
    """(Re)write directory/manifest.json with the SHA-256 of each named file."""
    path = directory / MANIFEST_NAME
    entries = {name: sha256_file(directory / name) for name in sorted(names)}
    path.write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n")
    return path


def verify(path: Path, manifest: Path | None = None) -> str:
    """Check path against the manifest and return its SHA-256; ModelError otherwise."""
    path = Path(path)
    manifest = Path(manifest) if manifest else path.parent / MANIFEST_NAME
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    expected = read_manifest(manifest).get(path.name)
    if expected is None:
        raise ModelError(f"model file {path} is not listed in {manifest}")
    actual = sha256_file(path)
    if actual != expected:
        raise ModelError(
            f"model file {path} does not match {manifest}: "
            f"expected sha256 {expected[:12]}..., got {actual[:12]}..."
        )
    return actual


def load_verified(path: Path, manifest: Path | None = None) -> Any:
    """joblib.load(path) after checking its SHA-256 against the manifest."""
    verify(path, manifest)
    import joblib

    return joblib.load(path)
