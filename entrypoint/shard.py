"""Which shard this Kapacitor is (KAPACITOR_SHARD), handed to the tasks as TICKscript vars.

When series are sharded across Kapacitor instances (docs/scaling.md), every instance runs the
same config.json; only this variable differs. A TICKscript that declares `var shard` tags its
results and alerts with it; one that declares `var shard_series` selects, in its batch query,
only the series the router gave this shard. Unset (one Kapacitor), the scripts' defaults
apply: shard '0' and every series.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

ENV = "KAPACITOR_SHARD"
_DECLARED = re.compile(r"^\s*var\s+(\w+)\s*=", re.MULTILINE)


def series_regex(shard: str) -> str:
    """An InfluxQL regex (between slashes) matching exactly this shard tag value."""
    return "^" + re.escape(shard).replace("/", r"\/") + "$"


def task_vars(script: str, env: Mapping[str, str] = os.environ) -> dict[str, dict[str, Any]]:
    """The shard vars the script declares, typed for Kapacitor; {} when not sharded."""
    value = env.get(ENV, "").strip()
    if not value:
        return {}
    wanted = {"shard": value, "shard_series": series_regex(value)}
    declared = set(_DECLARED.findall(script))
    return {k: {"type": "string", "value": v} for k, v in wanted.items() if k in declared}
