"""Socket UDFs declared in config.json (`"socket": true`): started before kapacitord in a
private directory, supervised, restarted in DEV_MODE, stopped with the entrypoint.

The integration tests run Samples/eii_socket_udfs (EII's two classifiers, each a socket
server) through the real entrypoint, kapacitord and influxd.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from entrypoint import config as cfg
from entrypoint.kapacitord import udf_functions
from entrypoint.settings import Settings
from entrypoint.socket_udfs import SocketUdfError, SocketUdfs, private_dir
from kapacitorkit.conf import render_udf_functions
from localstack.entrypoint import LocalEntrypoint, make_home
from localstack.polling import wait_for
from tests.conftest import ROOT

SAMPLE = ROOT / "Samples" / "eii_socket_udfs"
OUT_DB = "sample_eii"
STARTED = re.compile(r"socket UDF (\w+): started \(pid (\d+)\) on (\S+)")


def sample_config(tmp_path: Path) -> cfg.Config:
    for name in ("config.json", "point_classifier.tick"):
        shutil.copy(SAMPLE / name, tmp_path / name)
    return cfg.load(tmp_path / "config.json", ROOT)


# -- without kapacitord ----------------------------------------------------------------------


def test_socket_dir_is_private_and_owned(tmp_path):
    made, owned = private_dir(None)
    try:
        assert owned and stat.S_IMODE(made.stat().st_mode) == 0o700
    finally:
        made.rmdir()
    wide = tmp_path / "wide"
    wide.mkdir(mode=0o777)
    wide.chmod(0o777)
    assert private_dir(wide) == (wide, False)
    assert stat.S_IMODE(wide.stat().st_mode) == 0o700


def test_a_socket_path_too_long_names_the_setting(tmp_path):
    sockets = SocketUdfs(ROOT, sys.executable, tmp_path / ("x" * 90))
    with pytest.raises(SocketUdfError, match="KAPACITOR_SOCKET_DIR"):
        sockets.path("humidity_classifier")


def test_kapacitor_conf_gets_the_socket_not_a_program(tmp_path):
    config = sample_config(tmp_path)
    settings = Settings.from_env({"KAPACITOR_SOCKET_DIR": "/run/udfs"})
    text = render_udf_functions(udf_functions(config, settings))
    assert '[udf.functions."humidity_classifier"]\n  socket = "/run/udfs/humidity_classifier.sock"'\
        in text
    assert "prog" not in text


def test_a_server_that_cannot_start_is_named_with_its_output(tmp_path):
    (tmp_path / "udfs").mkdir()
    (tmp_path / "udfs" / "broken.py").write_text("raise SystemExit('no model file')\n")
    udf = cfg.Udf("broken", "broken.py", "stream", "10s", socket=True)
    sockets = SocketUdfs(tmp_path, sys.executable)
    try:
        with pytest.raises(SocketUdfError, match=r'"broken" \(udfs/broken.py\) exited with '
                                                 r"status 1:\nno model file"):
            sockets.sync(cfg.Config(tmp_path / "config.json", {"broken": udf}, {}))
    finally:
        sockets.stop_all()
    assert not sockets.directory.exists()


def test_check_starts_the_servers_for_its_throwaway_kapacitord(kapacitor_bin):
    env = {**os.environ, "KAPACITORD": str(kapacitor_bin / "kapacitord")}
    done = subprocess.run([sys.executable, "-m", "entrypoint", "check",
                           str(SAMPLE / "config.json")], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "every TICKscript compiles" in done.stdout


# -- through the entrypoint ------------------------------------------------------------------


def servers(entry: LocalEntrypoint) -> dict[str, tuple[int, Path]]:
    """Each socket UDF's latest pid and socket path, from the entrypoint's log."""
    return {n: (int(pid), Path(path)) for n, pid, path in STARTED.findall(entry.log_text())}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def results(influxdb) -> list[tuple[str, float, float]]:
    rows = influxdb.query("SELECT * FROM point_classifier_results", OUT_DB)
    return sorted((r["sensor"], r["temperature"], r["humidity"]) for r in rows)


def write(entry: LocalEntrypoint, readings: list[tuple[str, float, float]]) -> None:
    start = time.time_ns() - len(readings) * 10**9
    entry.api.write("".join(f"point_data,sensor={s} temperature={t},humidity={h} "
                            f"{start + i * 10**9}\n" for i, (s, t, h) in enumerate(readings)),
                    db="telemetry")


def write_until_classified(entry: LocalEntrypoint, influxdb, reading: tuple[str, float, float],
                           expected: set[tuple[str, float, float]]) -> bool:
    """Write `reading` until the results are `expected` (as a set: a reading written twice
    is one). A point written while Kapacitor restarts a task's nodes may reach the old ones
    and be dropped with them, even once the task reports it is executing again."""
    for _ in range(3):
        write(entry, [reading])
        if wait_for(lambda: set(results(influxdb)) == expected, 5):
            return True
    return False


@pytest.fixture
def sample_entry(kapacitor_bin, influxdb, tmp_path):
    """Factory: the sample's config.json through the real entrypoint; stopped after."""
    influxdb.query(f'DROP DATABASE "{OUT_DB}"')
    influxdb.query(f'CREATE DATABASE "{OUT_DB}"')
    home = make_home(tmp_path)
    for name in ("config.json", "point_classifier.tick"):
        shutil.copy(SAMPLE / name, home / "config" / name)
    started: list[LocalEntrypoint] = []

    def start(**env: str) -> LocalEntrypoint:
        entry = LocalEntrypoint(home, tmp_path, kapacitor_bin, influxdb.url, **env)
        started.append(entry)
        entry.wait_tasks(["point_classifier"])
        return entry

    yield home, start
    for entry in started:
        entry.stop()


@pytest.mark.kapacitor
@pytest.mark.influxdb
def test_servers_listen_first_in_a_private_dir_come_back_and_stop(sample_entry, influxdb):
    _, start = sample_entry
    entry = start()
    text = entry.log_text()
    assert text.index("socket UDF humidity_classifier: started") < text.index("starting ")
    found = servers(entry)
    assert set(found) == {"temperature_classifier", "humidity_classifier"}
    directory = found["humidity_classifier"][1].parent
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert directory.stat().st_uid == os.getuid()
    assert stat.S_IMODE(found["humidity_classifier"][1].stat().st_mode) == 0o660
    environ = Path(f"/proc/{found['humidity_classifier'][0]}/environ").read_bytes().split(b"\0")
    # the environment process UDFs get
    assert {e.split(b"=")[0] for e in environ} >= {b"MODELS_DIR", b"UDF_STATE_DIR"}

    write(entry, [("office", 22.0, 40.0), ("office", 27.5, 40.0), ("office", 26.0, 20.0),
                  ("cellar", 14.0, 80.0)])
    expected = [("cellar", 14.0, 80.0), ("office", 27.5, 40.0)]
    assert wait_for(lambda: results(influxdb) == expected, 15), results(influxdb)

    old_pid = found["humidity_classifier"][0]
    os.kill(old_pid, signal.SIGKILL)
    entry.wait_log(r"socket UDF humidity_classifier: exited with status -9; restarting in 0s")
    entry.wait_log(r"task point_classifier: socket UDF humidity_classifier restarted")
    assert wait_for(lambda: servers(entry)["humidity_classifier"][0] != old_pid, 10)
    assert wait_for(lambda: entry.api.task("point_classifier")["executing"], 15)
    expected = {("attic", 31.0, 70.0), *expected}
    assert write_until_classified(entry, influxdb, ("attic", 31.0, 70.0), expected), \
        entry.log_text()[-3000:]

    pids = [pid for pid, _ in servers(entry).values()]
    entry.proc.send_signal(signal.SIGTERM)
    assert entry.proc.wait(timeout=30) == 0
    assert not any(alive(pid) for pid in pids)
    assert not directory.exists()


@pytest.mark.kapacitor
@pytest.mark.influxdb
def test_dev_mode_restarts_a_socket_udf_whose_file_changed(sample_entry, influxdb):
    home, start = sample_entry
    entry = start(DEV_MODE="true")
    entry.wait_log("DEV_MODE: watching")
    before = servers(entry)
    with (home / "udfs" / "humidity_classifier.py").open("a") as script:
        script.write("# edited\n")
    entry.wait_log(r"socket UDF humidity_classifier: restarting")
    assert wait_for(lambda: servers(entry)["humidity_classifier"][0]
                    != before["humidity_classifier"][0], 15)
    assert servers(entry)["temperature_classifier"] == before["temperature_classifier"]
    assert not alive(before["humidity_classifier"][0])
    entry.wait_log(r"dev: task point_classifier: UDF code changed, restarting")
    assert wait_for(lambda: entry.api.task("point_classifier")["executing"], 15)
    assert write_until_classified(entry, influxdb, ("office", 28.0, 50.0),
                                  {("office", 28.0, 50.0)}), entry.log_text()[-3000:]


def test_config_json_declares_socket_in_the_schema():
    schema = json.loads((ROOT / "config" / "config.schema.json").read_text())
    assert schema["$defs"]["udf"]["properties"]["socket"]["type"] == "boolean"
    bad = json.loads((SAMPLE / "config.json").read_text())
    bad["udfs"][0]["socket"] = "/tmp/temperature_classifier"
    assert "udfs[0].socket: expected true or false, got a string" in cfg.schema_errors(bad)


FLAKY = """import socket, sys, time
path = sys.argv[sys.argv.index("--socket") + 1]
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen()
time.sleep(0.3)
sys.exit(3)
"""


def test_a_dying_server_is_restarted_at_once_then_with_backoff(tmp_path):
    (tmp_path / "udfs").mkdir()
    (tmp_path / "udfs" / "flaky.py").write_text(FLAKY)
    now = [0.0]
    sockets = SocketUdfs(tmp_path, sys.executable, clock=lambda: now[0])
    udf = cfg.Udf("flaky", "flaky.py", "stream", "10s", socket=True)
    try:
        sockets.sync(cfg.Config(tmp_path / "config.json", {"flaky": udf}, {}))
        server = sockets.servers["flaky"]
        first = server.proc
        assert wait_for(lambda: not server.alive(), 5)
        assert sockets.check() == ["flaky"]  # the first restart is immediate
        assert server.proc is not first and server.failures == 1
        assert wait_for(lambda: not server.alive(), 5)
        assert sockets.check() == []  # the second waits a second
        assert server.failures == 2 and server.restart_at == 1.0
        now[0] = 1.0
        assert sockets.check() == ["flaky"]
    finally:
        sockets.stop_all()


@pytest.mark.kapacitor
@pytest.mark.influxdb
def test_dev_mode_survives_a_broken_edit_and_recovers_when_fixed(sample_entry, influxdb):
    home, start = sample_entry
    entry = start(DEV_MODE="true")
    entry.wait_log("DEV_MODE: watching")
    script = home / "udfs" / "humidity_classifier.py"
    good = script.read_text()
    script.write_text("def broken(:\n" + good)
    entry.wait_log(r'socket UDF "humidity_classifier" \(udfs/humidity_classifier.py\) exited '
                   r"with status 1:(.|\n)*SyntaxError")
    assert entry.proc.poll() is None, "the entrypoint must keep running"
    assert "dev: task point_classifier: waits for its socket UDF" in entry.log_text()
    script.write_text(good + "# fixed\n")
    # back by DEV_MODE's restart or by the supervisor's, whichever comes first; then its task
    entry.wait_log(r"(UDF code changed|humidity_classifier restarted), restarting(.|\n)*"
                   r"task point_classifier: executing", 30)
    write(entry, [("office", 29.0, 60.0)])
    assert wait_for(lambda: results(influxdb) == [("office", 29.0, 60.0)], 20), \
        entry.log_text()[-3000:]
