"""`python -m entrypoint` as a command: --help, `check`, and refusing to start blind.

`check` against a real kapacitord (the pinned build): Kapacitor itself compiles the
TICKscripts in a throwaway server, so a broken one is named with Kapacitor's own error.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.testbed import ROOT

SETTINGS_VARS = ("KAPACITORD", "KAPACITOR_CONFIG_JSON", "KAPACITOR_DATA_DIR",
                 "KAPACITOR_CONF_DIR", "KAPACITOR_HTTP_BIND", "KAPACITOR_URL",
                 "KAPACITOR_UDFS_HOME", "INFLUXDB_URL", "DEV_MODE")
CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARS}


def entrypoint(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "entrypoint", *args], cwd=cwd,
                          env={**CLEAN_ENV, **env}, capture_output=True, text=True, timeout=120)


def files_under(path: Path) -> list[Path]:
    return sorted(path.rglob("*"))


def test_help_prints_usage_and_touches_nothing(tmp_path):
    for args in (["--help"], ["check", "--help"], ["run", "--help"]):
        done = entrypoint(*args, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("usage: python -m entrypoint"), done.stdout
    assert "--data-dir" in entrypoint("--help", cwd=tmp_path).stdout
    assert files_under(tmp_path) == []


def test_run_without_a_data_dir_writes_nothing_and_says_what_to_pass(tmp_path):
    system_conf = Path("/var/lib/kapacitor/conf/kapacitor.conf")
    before = system_conf.stat().st_mtime_ns if system_conf.exists() else None
    done = entrypoint(cwd=tmp_path)
    assert done.returncode == 2
    assert "--data-dir" in done.stderr and "KAPACITOR_DATA_DIR" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    after = system_conf.stat().st_mtime_ns if system_conf.exists() else None
    assert before == after
    assert files_under(tmp_path) == []


def test_run_on_a_taken_port_fails_fast_naming_it(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        done = entrypoint("--data-dir", str(tmp_path / "data"), "--http-bind",
                          f"127.0.0.1:{port}", "--kapacitord", "/bin/false", cwd=tmp_path)
        elapsed = time.monotonic() - started
    assert done.returncode == 2
    assert f"port {port} is already in use" in done.stderr, done.stderr
    assert elapsed < 10
    assert not (tmp_path / "data").exists(), "nothing is written before the checks pass"


def write_config(tmp_path: Path, tick: str, **task: object) -> Path:
    (tmp_path / "t.tick").write_text(tick)
    document = {
        "udfs": [{"name": "temperature_classifier", "script": "temperature_classifier.py",
                  "mode": "stream", "timeout": "10s"}],
        "tasks": [{"name": "t", "tick_script": "t.tick", "type": "stream",
                   "dbrps": [{"db": "telemetry", "rp": "autogen"}],
                   "udfs": ["temperature_classifier"], "enabled": True, **task}],
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(document))
    return path


GOOD_TICK = "stream|from().measurement('environment')@temperature_classifier().max(25.0)|log()\n"


def test_check_static_names_the_key_and_exits_nonzero(tmp_path):
    path = write_config(tmp_path, GOOD_TICK, dbrps=[{"db": "telemetry"}])
    done = entrypoint("check", "--static", str(path), cwd=tmp_path)
    assert done.returncode == 2
    assert "tasks[0].dbrps[0].rp: required key missing" in done.stdout, done.stdout
    assert entrypoint("check", "--static", str(ROOT / "config" / "config.json"),
                      cwd=tmp_path).returncode == 0


@pytest.mark.kapacitor
def test_check_compiles_ticks_in_a_throwaway_kapacitord(tmp_path, kapacitor_bin):
    good = write_config(tmp_path, GOOD_TICK)
    done = entrypoint("check", str(good), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "every TICKscript compiles" in done.stdout
    assert entrypoint("check", str(ROOT / "config" / "config.json"), cwd=tmp_path).returncode == 0

    # a syntax error, and an option of the wrong type (Kapacitor checks it against Info)
    for tick, expected in (("stream|from(\n", "t.tick"), (GOOD_TICK.replace("25.0", "'x'"), "max")):
        bad = write_config(tmp_path, tick)
        done = entrypoint("check", str(bad), cwd=tmp_path)
        assert done.returncode == 2, done.stdout
        assert 'tasks "t" (t.tick): Kapacitor refuses it' in done.stdout, done.stdout
        assert expected in done.stdout
    leftovers = [p for p in files_under(tmp_path) if p.suffix not in (".tick", ".json")]
    assert leftovers == [], "check writes nothing next to the config"
