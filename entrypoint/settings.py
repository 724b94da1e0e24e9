"""Where things are and how to reach them, from the environment (the image sets it).

No system path is a default: outside the image, the data directory comes from
KAPACITOR_DATA_DIR or `--data-dir`, so nothing is written to /var/lib unasked.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PACKAGE_HOME = Path(__file__).resolve().parent.parent


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def url_from_bind(bind: str) -> str:
    """The API URL for an http bind address: ':9092' and '0.0.0.0:9092' mean this host."""
    host, _, port = bind.rpartition(":")
    if host in ("", "0.0.0.0", "[::]", "::"):
        host = "127.0.0.1"
    return f"http://{host}:{port or '9092'}"


def kapacitor_log_level(level: str) -> str:
    """Kapacitor knows DEBUG, INFO and ERROR; map the usual names onto them."""
    level = level.strip().upper()
    level = {"WARN": "ERROR", "WARNING": "ERROR", "CRITICAL": "ERROR"}.get(level, level)
    return level if level in ("DEBUG", "INFO", "ERROR") else "INFO"


@dataclass(frozen=True)
class Settings:
    home: Path
    config_json: Path
    conf_dir: Path | None  # None: nowhere given; `run` refuses rather than guess a system path
    data_dir: Path | None
    kapacitord: str  # "": found at start (kapacitorkit.binaries)
    udf_python: str
    http_bind: str
    kapacitor_url: str
    influxdb_url: str
    log_level: str
    dev_mode: bool
    check_interval: float
    hostname: str = "localhost"
    influxdb_wait: float = 300.0
    socket_dir: Path | None = None  # socket UDFs; None: a private temporary directory
    results_url: str = ""  # where influxDBOut writes, if not InfluxDB: a buffer that retries

    def udf_env(self) -> dict[str, str]:
        """What every UDF process gets besides its own `env`, process and socket UDFs alike.

        MODELS_DIR defaults to <home>/models so the ML UDFs find their models in any layout;
        UDF_STATE_DIR (<data dir>/udf-state) is where stateful UDFs save their state at stop.
        """
        models = os.environ.get("MODELS_DIR") or str(self.home / "models")
        state = {"UDF_STATE_DIR": str(self.data_dir / "udf-state")} if self.data_dir else {}
        return {"PYTHONDONTWRITEBYTECODE": "1", "MODELS_DIR": models, **state}

    def dirs(self) -> tuple[Path, Path]:
        """The conf and data directories; ValueError while one is unset (`run` refuses to start
        then, naming the option, before anything calls this)."""
        if self.conf_dir is None or self.data_dir is None:
            raise ValueError("no data directory: pass --data-dir DIR or set KAPACITOR_DATA_DIR")
        return self.conf_dir, self.data_dir

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        home = Path(env.get("KAPACITOR_UDFS_HOME") or PACKAGE_HOME).resolve()
        bind = env.get("KAPACITOR_HTTP_BIND") or ":9092"
        data_dir = _path(env.get("KAPACITOR_DATA_DIR"))
        return cls(
            home=home,
            config_json=Path(env.get("KAPACITOR_CONFIG_JSON") or home / "config" / "config.json"),
            conf_dir=_path(env.get("KAPACITOR_CONF_DIR")) or (data_dir and data_dir / "conf"),
            data_dir=data_dir,
            kapacitord=env.get("KAPACITORD", ""),
            udf_python=env.get("UDF_PYTHON") or sys.executable,
            http_bind=bind,
            kapacitor_url=env.get("KAPACITOR_URL") or url_from_bind(bind),
            influxdb_url=env.get("INFLUXDB_URL", ""),
            log_level=kapacitor_log_level(env.get("LOG_LEVEL", "INFO")),
            dev_mode=_truthy(env.get("DEV_MODE", "")),
            check_interval=float(env.get("SUPERVISE_INTERVAL") or 3.0),
            # The official image's default: the name Kapacitor reports is the container's.
            hostname=env.get("KAPACITOR_HOSTNAME") or env.get("HOSTNAME") or socket.gethostname(),
            influxdb_wait=float(env.get("INFLUXDB_WAIT") or 300.0),
            socket_dir=_path(env.get("KAPACITOR_SOCKET_DIR")),
            results_url=env.get("INFLUXDB_RESULTS_URL", ""),
        )
