"""Verified model loading: only files inside the models directory, only bytes the manifest pins.

joblib files are pickles, and unpickling runs code. A `model` option is a TICKscript property,
and Kapacitor's task API may be reachable by others, so the option is treated as untrusted:

- it names a file *inside* the models directory ($MODELS_DIR, default: the repo's models/);
  absolute paths, `..` and links that lead out of it are refused;
- the manifest is always the models directory's own ``manifest.json``
  (``{"relative/path": "sha256 hex"}``, written by ``mlkit.train``), never one beside the file;
- the file is read once; the bytes that were hashed are the bytes that are decoded, so it cannot
  be swapped between the check and the load.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path, PurePosixPath
from typing import Any

MANIFEST_NAME = "manifest.json"
DEFAULT_MODELS_DIR = Path(__file__).resolve().parent.parent.parent / "models"


class ModelError(Exception):
    """A model file could not be loaded safely."""


def models_dir() -> Path:
    """The one directory models are loaded from: $MODELS_DIR, else the repo's models/."""
    return Path(os.environ.get("MODELS_DIR") or DEFAULT_MODELS_DIR).resolve()


def resolve(name: str, option: str = "model") -> Path:
    """The file a model option names, inside the models directory; ModelError naming the option."""
    root = models_dir()
    relative = PurePosixPath(name)
    if not name or relative.is_absolute() or "\\" in name or ".." in relative.parts:
        raise ModelError(f"{option}: {name!r} must be a file name inside the models "
                         f"directory {root} (no absolute path, no '..')")
    path = root / relative
    if not path.resolve().is_relative_to(root):
        raise ModelError(f"{option}: {name!r} leads out of the models directory {root}")
    return path


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(manifest: Path) -> dict[str, str]:
    """Relative path -> SHA-256 mapping; ModelError if missing or malformed."""
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


def read_verified(name: str, option: str = "model") -> bytes:
    """The bytes of a models-directory file whose SHA-256 matches the manifest; ModelError else."""
    path = resolve(name, option)
    manifest = models_dir() / MANIFEST_NAME
    key = PurePosixPath(name).as_posix()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"{option}: model file not found: {path}") from None
    except OSError as exc:
        raise ModelError(f"{option}: cannot read model file {path}: {exc}") from exc
    expected = read_manifest(manifest).get(key)
    if expected is None:
        raise ModelError(f"{option}: model file {path} is not listed in {manifest}")
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ModelError(f"{option}: model file {path} does not match {manifest}: "
                         f"expected sha256 {expected[:12]}..., got {actual[:12]}...")
    return data


def load_pickle(name: str, option: str = "model") -> Any:
    """joblib.load of verified bytes (never of the path, which could change after the check)."""
    data = read_verified(name, option)
    import joblib

    return joblib.load(io.BytesIO(data))


def load_json(name: str, option: str = "model") -> Any:
    """A verified JSON model: numbers only, nothing runs when it is read."""
    try:
        return json.loads(read_verified(name, option))
    except ValueError as exc:
        raise ModelError(f"{option}: model file {name} is not valid JSON: {exc}") from exc
