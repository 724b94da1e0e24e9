"""Foreign pickles by every route a `model` option could take (tests/test_model_safety.py and
the fault table's model row in bench/faults.py).

The pickle, when loaded, creates a marker file: a visible side effect of running its code. A
route is safe when Init fails naming the option and the marker never appears.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

from localstack import ROOT
from localstack.udf_process import spawn


class _Payload:
    """Unpickling this calls open(marker, 'w')."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def evil_pickle(directory: Path) -> tuple[Path, Path]:
    """An evil pickle in `directory`/outside with a manifest beside it that vouches for it;
    returns the pickle's path and the marker its loading would create."""
    marker = directory / "marker"
    outside = directory / "outside"
    outside.mkdir()
    path = outside / "evil.joblib"
    path.write_bytes(pickle.dumps(_Payload(marker)))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    (outside / "manifest.json").write_text(json.dumps({"evil.joblib": digest}))
    return path, marker


def models_copy(directory: Path) -> Path:
    """A copy of the shipped models directory (with its manifest) to plant routes in."""
    models = directory / "models"
    shutil.copytree(ROOT / "models", models)
    return models


def routes(evil_path: Path, models: Path) -> dict[str, str]:
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


@dataclass
class RouteResult:
    route: str
    refused: bool  # Init failed
    error: str  # its message
    marker_written: bool

    @property
    def names_the_option(self) -> bool:
        return self.error.startswith("ModelError: model: ")


def try_route(script: str, route: str, name: str, models: Path, marker: Path) -> RouteResult:
    """Init the real UDF process with model=`name` and $MODELS_DIR=`models`."""
    client = spawn(script, env={**os.environ, "MODELS_DIR": str(models)})
    try:
        result = client.init({"model": name}, timeout=60)  # sklearn import: slow when busy
    finally:
        client.close_input()
        client.wait()
    return RouteResult(route, not result.success, result.error, marker.exists())
