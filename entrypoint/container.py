"""What the container needs before kapacitord starts: writable data, a reachable InfluxDB.

Both fail in ways that are obscure from kapacitord's side (a traceback on the conf dir, or
kapacitord quitting after its InfluxDB start-up timeout), so they are checked here first and
reported with what to change.
"""

from __future__ import annotations

import os
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path

from entrypoint.log import log


class Unreachable(RuntimeError):
    """InfluxDB did not answer within the wait: the message says where and what to check."""


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def unwritable(paths: Iterable[Path]) -> str:
    """'' when every path exists (or can be made) and takes a file; else the error to show."""
    for path in paths:
        try:
            path.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=path):
                pass
        except OSError as exc:
            owner = _nearest_existing(path)
            st = owner.stat()
            return (f"cannot write to {path} ({exc.strerror}): the container runs as uid "
                    f"{os.getuid()} (gid {os.getgid()}), and {owner} is owned by uid "
                    f"{st.st_uid} (gid {st.st_gid}) with mode {st.st_mode & 0o7777:o}. Mount a "
                    f"volume that uid can write at {path} (e.g. `chown -R {os.getuid()} <dir>` "
                    f"on the host), or run the container as uid {st.st_uid} (--user).")
    return ""


def influxdb_ping(url: str, timeout: float = 3.0) -> str:
    """'' when InfluxDB answers /ping at `url`; else why not."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/ping", timeout=timeout):
            return ""
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except OSError as exc:
        return str(getattr(exc, "reason", None) or exc)


def wait_for_influxdb(url: str, timeout: float, interval: float = 2.0,
                      report_every: float = 10.0,
                      ping: Callable[[str], str] = influxdb_ping) -> None:
    """Return once InfluxDB answers; say so while it does not; raise Unreachable at `timeout`."""
    if not url:
        return
    started = time.monotonic()
    reported = None
    while True:
        why = ping(url)
        waited = time.monotonic() - started
        if not why:
            if reported is not None:
                log(f"InfluxDB at {url} answers ({waited:.0f}s)")
            return
        if waited >= timeout:
            raise Unreachable(f"InfluxDB at {url} did not answer within {timeout:g}s ({why}). "
                              "Check that it runs and that INFLUXDB_URL names it (unset "
                              "INFLUXDB_URL to run without InfluxDB).")
        if reported is None or waited - reported >= report_every:
            reported = waited
            log(f"waiting for InfluxDB at {url}: {why}; retrying every {interval:g}s for up "
                f"to {timeout - waited:.0f}s more (INFLUXDB_URL, INFLUXDB_WAIT)")
        time.sleep(interval)
