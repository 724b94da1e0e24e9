"""Reading NAB-format csv files (timestamp,value) for training and benchmarks."""

from __future__ import annotations

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
