"""Garbage-collector settings for a long-running UDF, and the time the collector takes.

Handling points makes almost no reference cycles (reference counting frees the
messages), yet CPython's default collector keeps rescanning everything Init
built: sklearn, pandas, the model, about a tenth of a model UDF's time. Frozen after
Init and collected less often, the collector costs a tenth of that again
(bench/udf_throughput.py prints both).
"""

from __future__ import annotations

import gc
import threading
import time

YOUNG_THRESHOLD = 20_000
"""Allocations between young collections (CPython's default is 700)."""


def settle() -> None:
    """After Init: move the start-up heap out of the collector's reach, collect less often."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)


class GcClock:
    """Seconds and count of collections in this process since the last Init (gc.callbacks)."""

    _lock = threading.Lock()
    _installed = False
    seconds = 0.0
    collections = 0
    _started = 0.0

    @classmethod
    def install(cls) -> None:
        with cls._lock:
            if not cls._installed:
                gc.callbacks.append(cls._callback)
                cls._installed = True

    @classmethod
    def reset(cls) -> None:
        cls.seconds, cls.collections = 0.0, 0

    @classmethod
    def _callback(cls, phase: str, _info: dict) -> None:
        if phase == "start":
            cls._started = time.perf_counter()
        else:
            cls.seconds += time.perf_counter() - cls._started
            cls.collections += 1

    @classmethod
    def summary(cls) -> str:
        return f"gc {cls.seconds * 1000:.0f} ms in {cls.collections} collections since Init"
