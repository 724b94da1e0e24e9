"""ads_model's settings, declared once: the detector checks them and the UDF's options are
made from them (apart from the detector, so that declaring options imports no numpy)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

BLOCK = 64  # points per block of the detector's sliding range (mlkit.ads)


def _setting(default: float, help: str, low: float = 0, high: float = math.inf) -> Any:
    return field(default=default, metadata={"help": help, "low": low, "high": high})


@dataclass(frozen=True)
class AdsConfig:
    """Detector settings; the defaults are the ones `make nab` scores on the NAB corpus."""

    learn: int = _setting(64, "points of a group seen before its first score", low=2)
    history: int = _setting(4096, "points whose range is normal (longer: quieter, slower to "
                                  "forget)", low=2 * BLOCK)
    window: int = _setting(24, "points in the short mean and short volatility", low=1)
    margin: float = _setting(0.05, "how far beyond the range, as a fraction of its width, is "
                                   "anomalous (higher: fewer alerts, fewer anomalies found)")
    min_sigma: float = _setting(4.0, "standard deviations from the recent mean an anomaly "
                                     "must also lie (higher: fewer alerts)")
    stuck_after: int = _setting(5, "repeats of one value before a stuck sensor may count",
                                low=1)
    close_after: int = _setting(32, "normal points that close an anomalous period", low=1)
    min_gap: int = _setting(48, "points after an alert before the group may alert again")
    relearn: int = _setting(288, "points a change must last to become the new normal "
                                 "(0: never)")
    confirm: int = _setting(1, "anomalous points within a block a period needs to alert, "
                               "unless it sets a new record (higher: fewer alerts, later)",
                            low=1, high=BLOCK)

    def check(self) -> None:
        """Reject settings the detector cannot work with, naming the setting."""
        for setting in fields(self):
            problem = bounds_problem(setting.name, getattr(self, setting.name))
            if problem:
                raise ValueError(f"{setting.name} {problem}")
        if 0 < self.relearn <= self.window:
            raise ValueError(f"relearn must be 0 or > window ({self.window}), "
                             f"got {self.relearn}")


def bounds_problem(name: str, value: float) -> str | None:
    """Why `value` is out of the bounds declared for setting `name`, or None."""
    meta = next(f.metadata for f in fields(AdsConfig) if f.name == name)
    low, high = meta["low"], meta["high"]
    if not math.isfinite(value) or not low <= value <= high:
        return f"must be {low} to {high:g}" if math.isfinite(high) else f"must be >= {low}"
    return None


def settings() -> list[tuple[str, type, Any, str]]:
    """(name, type, default, help) of every setting, in declaration order."""
    return [(f.name, type(f.default), f.default, f.metadata["help"]) for f in fields(AdsConfig)]
