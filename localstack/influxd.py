"""influxd (InfluxDB 1.x, Debian's `influxdb` package) with a throwaway data directory."""

from __future__ import annotations

import json
import shutil
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from kapacitorkit.ports import free_port
from localstack.polling import wait_for
from localstack.process import Process


class LocalInfluxd(Process):
    def __init__(self, work: Path) -> None:
        binary = shutil.which("influxd")
        if binary is None:
            raise RuntimeError("influxd not found: install Debian's `influxdb` package "
                               "(.ci/run does)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        conf = work / "influxdb.conf"
        conf.write_text(f"""reporting-disabled = true
bind-address = "127.0.0.1:{free_port()}"
[meta]
  dir = "{work}/meta"
[data]
  dir = "{work}/data"
  wal-dir = "{work}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
""")
        super().__init__([binary, "-config", str(conf)], work / "influxd.log")
        wait_for(lambda: not self.alive() or self._ping(), 30)
        if not (self.alive() and self._ping()):
            self.stop()
            raise RuntimeError(f"influxd did not start:\n{self.log_text()[-2000:]}")

    def _ping(self) -> bool:
        try:
            urllib.request.urlopen(f"{self.url}/ping", timeout=1).close()
            return True
        except OSError:
            return False

    def query(self, q: str, db: str = "") -> list[dict]:
        """Every row of the first statement's series, as dicts with the series' tags."""
        return rows(query(self.url, q, db))

    def write(self, lines: str, db: str, rp: str = "autogen", precision: str = "ns") -> None:
        write(self.url, lines, db, rp, precision)


def query(url: str, q: str, db: str = "") -> dict:
    """The first statement's result (times in ns); POSTed unless it only reads."""
    params = urllib.parse.urlencode({"q": q, "db": db, "epoch": "ns"})
    reads = q.strip().upper().startswith(("SELECT", "SHOW"))
    request = urllib.request.Request(f"{url}/query?{params}", data=None if reads else b"",
                                     method="GET" if reads else "POST")
    with urllib.request.urlopen(request, timeout=10) as resp:
        result = json.load(resp)["results"][0]
    if "error" in result:
        raise RuntimeError(f"InfluxDB: {result['error']} (in {q!r})")
    return result


def write(url: str, lines: str, db: str, rp: str = "autogen", precision: str = "ns") -> None:
    """Line protocol straight into InfluxDB (InfluxDB answers 204)."""
    params = urllib.parse.urlencode({"db": db, "rp": rp, "precision": precision})
    request = urllib.request.Request(f"{url}/write?{params}", data=lines.encode(), method="POST")
    urllib.request.urlopen(request, timeout=10).close()


def subscribed(url: str, db: str, destination: str, timeout: float = 30.0) -> bool:
    """Wait until InfluxDB forwards `db` to `destination` (Kapacitor subscribes at its start);
    SHOW SUBSCRIPTIONS has a series per database, a row per subscription."""

    def found() -> bool:
        return any(name == db and destination in str(row.get("destinations"))
                   for name, row in series_rows(query(url, "SHOW SUBSCRIPTIONS")))

    return bool(wait_for(found, timeout))


def series_rows(result: dict) -> Iterator[tuple[str, dict]]:
    """(measurement, row) for every row of every series; a row has its series' tags."""
    for series in result.get("series", []):
        for values in series["values"]:
            row = dict(zip(series["columns"], values, strict=True))
            row.update(series.get("tags", {}))
            yield series["name"], row


def rows(result: dict) -> list[dict]:
    return [row for _, row in series_rows(result)]
