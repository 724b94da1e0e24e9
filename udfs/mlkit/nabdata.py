"""Reading NAB-format csv files (timestamp,value) for training and benchmarks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def load_series(path: Path) -> tuple[list[int], np.ndarray]:
    """Timestamps (ns since epoch, naive times taken as UTC) and float values."""
    import pandas as pd

    df = pd.read_csv(path)
    ts = pd.to_datetime(df["timestamp"]).astype("datetime64[ns]").astype("int64")
    return [int(t) for t in ts], df["value"].to_numpy(dtype=float)


def load_corpus(nab_dir: Path) -> tuple[dict[str, tuple[list[int], np.ndarray]],
                                          dict[str, list[tuple[int, int]]]]:
    """Every labelled file's series, by name in sorted order, and the labelled windows."""
    windows = load_windows(nab_dir)
    return {name: load_series(nab_dir / name) for name in sorted(windows)}, windows


def load_windows(nab_dir: Path) -> dict[str, list[tuple[int, int]]]:
    """Every file's labelled anomaly windows (nab_dir/windows.json) as (start_ns, end_ns)."""
    import pandas as pd

    labels = json.loads((nab_dir / "windows.json").read_text())
    return {name: [(int(pd.Timestamp(a).value), int(pd.Timestamp(b).value)) for a, b in spans]
            for name, spans in labels.items()}
