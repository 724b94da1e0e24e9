"""Polling with a deadline: the one way the demo, the tools and the tests wait for a condition."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 15.0, interval: float = 0.1,
             what: str = "") -> T:
    """Poll until predicate() is truthy and return it. At the deadline return its last value,
    or, when `what` says what was awaited, raise TimeoutError naming it."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    if not value and what:
        raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
    return value
