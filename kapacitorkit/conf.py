"""Render kapacitor.conf from the shipped template and the UDFs config.json declares.

The test bed renders its configuration with the same code, so the tests run
the configuration the image ships.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

TEMPLATE = Path(__file__).resolve().parent.parent / "config" / "kapacitor.conf.tmpl"


@dataclass(frozen=True)
class UdfFunction:
    """One [udf.functions.NAME] entry: a process UDF (prog+args) or a socket UDF."""

    name: str
    prog: str = ""
    args: tuple[str, ...] = ()
    timeout: str = "10s"
    env: Mapping[str, str] = field(default_factory=dict)
    socket: str = ""


def _q(value: str) -> str:
    """A TOML basic string (JSON string escapes are valid TOML)."""
    return json.dumps(value)


def render_udf_functions(functions: Iterable[UdfFunction]) -> str:
    lines: list[str] = []
    for fn in functions:
        lines.append(f"[udf.functions.{_q(fn.name)}]")
        if fn.socket:
            lines.append(f"  socket = {_q(fn.socket)}")
        else:
            lines.append(f"  prog = {_q(fn.prog)}")
            lines.append(f"  args = [{', '.join(_q(a) for a in fn.args)}]")
        lines.append(f"  timeout = {_q(fn.timeout)}")
        if fn.env and not fn.socket:
            lines.append(f"  [udf.functions.{_q(fn.name)}.env]")
            lines.extend(f"    {_q(k)} = {_q(v)}" for k, v in sorted(fn.env.items()))
        lines.append("")
    return "\n".join(lines)


def render_subscriptions(subscriptions: Mapping[str, Sequence[str]]) -> str:
    """[influxdb.subscriptions] of the InfluxDB cluster: database = [retention policies]."""
    if not subscriptions:
        return ""
    lines = ["  [influxdb.subscriptions]"]
    lines += [f"    {_q(db)} = [{', '.join(_q(rp) for rp in rps)}]"
              for db, rps in subscriptions.items()]
    return "\n".join(lines) + "\n"


def render(functions: Iterable[UdfFunction], *, data_dir: str, http_bind: str = ":9092",
           influxdb_url: str = "", hostname: str = "localhost", log_level: str = "INFO",
           snapshot_interval: str = "1m", auth: str = "off", results_url: str = "",
           subscriptions: Mapping[str, Sequence[str]] | None = None,
           template: Path = TEMPLATE) -> str:
    """The whole kapacitor.conf; InfluxDB is enabled only when a URL is given.

    auth: "off"; "on" (Kapacitor's user store, every HTTP request authenticated); or
    "users" (the user store without HTTP authentication, to create the first user).
    results_url: where influxDBOut writes (a retrying buffer in front of InfluxDB); default
    InfluxDB itself. subscriptions: what InfluxDB forwards to Kapacitor (database ->
    retention policies); none: subscriptions are off, points are written to Kapacitor.
    """
    if auth not in ("off", "on", "users"):
        raise ValueError(f"auth: {auth!r} is not off, on or users")
    return Template(template.read_text()).substitute(
        auth_enabled="false" if auth == "off" else "true",
        http_auth="true" if auth == "on" else "false",
        hostname=hostname,
        data_dir=data_dir,
        http_bind=http_bind,
        log_level=log_level,
        snapshot_interval=snapshot_interval,
        influxdb_enabled="true" if influxdb_url else "false",
        influxdb_url=influxdb_url or "http://localhost:8086",
        results_url=results_url or influxdb_url or "http://localhost:8086",
        disable_subscriptions="false" if subscriptions else "true",
        subscriptions=render_subscriptions(subscriptions or {}),
        udf_functions=render_udf_functions(functions),
    )
