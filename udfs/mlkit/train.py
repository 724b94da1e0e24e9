"""Train the shipped models: ``python -m mlkit.train rfc|all`` (PYTHONPATH=udfs).

ads_model needs no pretrained model: it learns each series from its first points (mlkit.ads).
Writes models/rfc.joblib + rfc.json, then models/manifest.json
with the SHA-256 of every model file. All randomness is seeded: two runs give the same
metrics and predictions.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

from mlkit.manifest import sha256_file, write_manifest

ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = ROOT / "training_data_sets"
OUT_DIR = ROOT / "models"
MODEL_FILES = ("rfc.joblib",)


def say(msg: str) -> None:
    """One short progress line."""
    print(f"[train {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def versions() -> dict[str, str]:
    """Library versions the artefacts were produced with (pickles depend on them)."""
    import joblib
    import numpy
    import sklearn

    return {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "sklearn": sklearn.__version__,
        "joblib": joblib.__version__,
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Stable, readable JSON."""
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def train_rfc(data_dir: Path, out_dir: Path, n_estimators: int | None = None) -> dict[str, Any]:
    """Fit the AI4I failure classifier, print held-out metrics, save model + metadata."""
    import joblib
    import pandas as pd

    from mlkit import rfc

    data = data_dir / "ai4i2020.csv"
    say(f"rfc: reading {data}")
    raw, y = rfc.ai4i_raw(pd.read_csv(data))
    x_train, x_test, y_train, y_test = rfc.split(raw, y)
    params = rfc.RfcParams()
    if n_estimators:
        params = rfc.RfcParams(**{**params.__dict__, "n_estimators": n_estimators})
    say(f"rfc: fitting {params.n_estimators} trees on {len(y_train)} rows")
    model = rfc.fit(x_train, y_train, params)
    metrics = rfc.evaluate(model, x_test, y_test)
    say(f"rfc: OOB threshold {model.threshold:.2f}")
    say("rfc: test precision {precision:.3f} recall {recall:.3f} F1 {f1:.3f}".format(**metrics))
    say(f"rfc: confusion [[tn, fp], [fn, tp]] = {metrics['confusion_matrix']}")
    model.info = {"params": params.__dict__, "metrics": metrics}
    path = out_dir / "rfc.joblib"
    joblib.dump(model, path)
    meta = {
        "model_file": path.name,
        "model_sha256": sha256_file(path),
        "features": list(model.features),
        "raw_features": list(model.raw_features),
        "target": rfc.TARGET,
        "threshold": model.threshold,
        "params": params.__dict__,
        "seed": params.seed,
        "split": {"test_size": rfc.TEST_SIZE, "random_state": rfc.SPLIT_SEED, "stratify": True},
        "metrics": metrics,
        "training_data": {"file": data.name, "sha256": sha256_file(data), "rows": len(y)},
        "versions": versions(),
    }
    write_json(out_dir / "rfc.json", meta)
    say(f"rfc: wrote {path} and rfc.json")
    return meta


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    ap = argparse.ArgumentParser(prog="python -m mlkit.train", description=__doc__)
    ap.add_argument("what", choices=("rfc", "all"))
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR)
    ap.add_argument("--out-dir", type=Path, default=OUT_DIR)
    ap.add_argument("--n-estimators", type=int, default=None, help="rfc trees (tests use fewer)")
    args = ap.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    if args.what in ("rfc", "all"):
        train_rfc(args.data_dir, args.out_dir, args.n_estimators)
    present = [name for name in MODEL_FILES if (args.out_dir / name).is_file()]
    say(f"manifest: {write_manifest(args.out_dir, present)} ({', '.join(present)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
