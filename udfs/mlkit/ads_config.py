"""ads_model's settings, apart from the detector so that declaring options imports no numpy."""

from __future__ import annotations

import math
from dataclasses import dataclass

BLOCK = 64  # points per block of the detector's sliding range (mlkit.ads)


@dataclass(frozen=True)
class AdsConfig:
    """Detector settings; the defaults are the ones `make nab` scores on the NAB corpus."""

    learn: int = 64  # points seen before the first score
    history: int = 4096  # points whose range is normal
    window: int = 24  # points in the short mean and the short volatility
    margin: float = 0.05  # beyond the range by this fraction of its width is anomalous
    min_sigma: float = 4.0  # ... and this many standard deviations from the window's mean
    stuck_after: int = 5  # repeats of one value that may count as a stuck sensor
    close_after: int = 32  # normal points that close an anomalous period
    min_gap: int = 48  # points after an alert before the series may alert again
    relearn: int = 288  # points a change must last to become the new normal (0: never)
    confirm: int = 1  # flagged points a period needs to alert, unless it opens on a new record

    def check(self) -> None:
        """Reject settings the detector cannot work with, naming the setting."""
        if self.learn < 2:
            raise ValueError(f"learn must be >= 2, got {self.learn}")
        if self.history < 2 * BLOCK:
            raise ValueError(f"history must be >= {2 * BLOCK}, got {self.history}")
        if min(self.window, self.close_after, self.stuck_after) < 1:
            raise ValueError("window, close_after and stuck_after must be >= 1")
        if not 1 <= self.confirm <= BLOCK:
            raise ValueError(f"confirm must be 1 to {BLOCK}, got {self.confirm}")
        for name in ("margin", "min_sigma"):
            value = getattr(self, name)
            if value < 0 or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if self.min_gap < 0 or self.relearn < 0:
            raise ValueError("min_gap and relearn must be >= 0")
        if 0 < self.relearn <= self.window:
            raise ValueError(f"relearn must be 0 or > window ({self.window})")
