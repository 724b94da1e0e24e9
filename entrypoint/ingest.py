"""How points reach the stream tasks: written to Kapacitor, or by InfluxDB subscription.

`"ingest": "kapacitor_writes"` (the default): Telegraf or the simulator write every point to
Kapacitor as well as to InfluxDB, and Kapacitor subscribes to nothing. `"ingest":
"influxdb_subscriptions"` is EII's data path: points are written to InfluxDB only and InfluxDB
forwards them to Kapacitor. Kapacitor then subscribes to exactly the databases and retention
policies its stream tasks read, and a task may not write its results into one of those (they
would come back as input): results go to a database or retention policy of their own.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from entrypoint.config import Config, Task

WRITES = "kapacitor_writes"
SUBSCRIPTIONS = "influxdb_subscriptions"
CHOICES = (WRITES, SUBSCRIPTIONS)

_COMMENT = re.compile(r"//[^\n]*")
_DBRP = re.compile(r'^\s*dbrp\s+"([^"]+)"\."([^"]+)"', re.MULTILINE)
_OUT = re.compile(r"\|\s*influxDBOut\(\)((?:\s*\.\w+\([^)]*\))*)")
_PROPERTY = re.compile(r"\.(database|retentionPolicy)\(\s*'([^']*)'\s*\)")


def reads(task: Task) -> set[tuple[str, str]]:
    """The (database, retention policy) pairs a task reads: config.json's or the script's."""
    return set(task.dbrps) or set(_DBRP.findall(_COMMENT.sub("", task.tick_path.read_text())))


def writes(tick: str) -> list[tuple[str, str]]:
    """Where a TICKscript's influxDBOut nodes write; the retention policy '' is autogen
    (InfluxDB's default); a database given by a variable is not known here and left out."""
    found = []
    for chain in _OUT.findall(_COMMENT.sub("", tick)):
        props = dict(_PROPERTY.findall(chain))
        if "database" in props:
            found.append((props["database"], props.get("retentionPolicy") or "autogen"))
    return found


def subscriptions(config: Config) -> dict[str, list[str]]:
    """[influxdb.subscriptions] for the subscription path: what the stream tasks read."""
    if config.ingest != SUBSCRIPTIONS:
        return {}
    wanted: dict[str, set[str]] = {}
    for task in config.tasks.values():
        if task.type == "stream":
            for db, rp in reads(task):
                wanted.setdefault(db, set()).add(rp)
    return {db: sorted(rps) for db, rps in sorted(wanted.items())}


def feedback(config: Config) -> list[str]:
    """On the subscription path, each task that writes into a subscribed database."""
    subscribed = {(db, rp) for db, rps in subscriptions(config).items() for rp in rps}
    return [f'tasks "{task.name}": {task.tick_path.name} writes to {db}.{rp}, which '
            f'Kapacitor subscribes to ("ingest": "{SUBSCRIPTIONS}"): its results would come '
            "back as input; write them to a database or retention policy of their own"
            for task in config.tasks.values()
            for db, rp in writes(task.tick_path.read_text()) if (db, rp) in subscribed]

