"""EII's Kapacitor config.json, read as it is or migrated (entrypoint/eii.py).

The seed layout is Samples/eii_socket_udfs/eii_config.json: EII's own multi-UDF sample
(`config` wrapper, `task[]` of task_name, tick_script, udfs[{type, name}]), and the same with
`task` at the top level as older EII files have it. Both must run through the real entrypoint
and kapacitord; a key neither format knows is an error naming it.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from entrypoint import config as cfg
from entrypoint import eii
from localstack.entrypoint import LocalEntrypoint, make_home
from tests.conftest import ROOT

SAMPLE = ROOT / "Samples" / "eii_socket_udfs"
WRAPPED = json.loads((SAMPLE / "eii_config.json").read_text())
TOP_LEVEL = {"influxdb": {"username": "admin", "password": "admin123"},
             "task": WRAPPED["config"]["task"]}
FORMS = {"under config": WRAPPED, "top level": TOP_LEVEL}


def parse(document: dict, where: Path = SAMPLE) -> cfg.Config:
    return cfg.parse(json.dumps(document), where / "config.json", ROOT)


def errors(document: dict) -> str:
    with pytest.raises(cfg.ConfigError) as raised:
        parse(document)
    return str(raised.value)


@pytest.mark.parametrize("form", FORMS)
def test_both_forms_read_as_socket_udfs_and_a_task(form):
    config = parse(FORMS[form])
    assert set(config.udfs) == {"temperature_classifier", "humidity_classifier"}
    assert all(u.socket and u.mode == "stream" and u.script == f"{n}.py"
               for n, u in config.udfs.items())
    task = config.tasks["point_classifier"]
    assert (task.type, task.dbrps, task.enabled) == ("stream", (), True)
    assert task.udfs == ("temperature_classifier", "humidity_classifier")
    assert len(config.notes) == 1 and "udfs, tasks, alert_handlers" in config.notes[0]
    assert "Not used here: influxdb" in config.notes[0]


def test_our_format_gives_no_note():
    assert parse(json.loads((SAMPLE / "config.json").read_text())).notes == ()


def test_go_udfs_run_as_our_python_script_and_a_tick_only_task_has_none(tmp_path):
    shutil.copy(SAMPLE / "point_classifier.tick", tmp_path)
    (tmp_path / "simple_logging.tick").write_text(
        'dbrp "telemetry"."autogen"\nstream\n    |from()\n    |log()\n')
    document = copy.deepcopy(TOP_LEVEL)
    document["task"][0]["udfs"][0]["type"] = "go"
    document["task"].append({"task_name": "simple_logging", "tick_script": "simple_logging"})
    config = parse(document, tmp_path)
    assert "type go run as our Python udfs/NAME.py" in config.notes[0]
    assert config.tasks["simple_logging"].udfs == ()
    assert config.tasks["simple_logging"].tick_script == "simple_logging.tick"


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(bogus=1), "bogus: unknown key (EII's file has config, interfaces"),
    (lambda d: d["config"].update(tasks=[]), "config.tasks: unknown key (EII's Kapacitor reads"),
    (lambda d: d["config"]["task"][0].update(enabled=True),
     "config.task[0].enabled: unknown key (EII's task has task_name, tick_script, udfs)"),
    (lambda d: d["config"]["task"][0]["udfs"][0].update(socket="/tmp/x"),
     "config.task[0].udfs[0].socket: unknown key (EII's UDF has type, name)"),
    (lambda d: d["config"]["task"][0]["udfs"][0].update(type="rust"),
     'config.task[0].udfs[0].type: "rust" is not one of python, go'),
    (lambda d: d["config"]["task"][0]["udfs"][0].update(name="no_such_udf"),
     'config.task[0].udfs[0]: UDF "no_such_udf": script udfs/no_such_udf.py not found'),
    (lambda d: d["config"]["task"][0].pop("task_name"),
     "config.task[0].task_name: required key missing"),
    (lambda d: d["config"]["task"][0].update(tick_script="nowhere.tick"),
     "config.task[0].tick_script: nowhere.tick not found"),
])
def test_a_key_neither_format_knows_is_an_error_naming_it(change, message):
    document = copy.deepcopy(WRAPPED)
    change(document)
    assert message in errors(document)


def test_dbrps_come_from_config_json_or_the_script_not_both(tmp_path):
    for name in ("point_classifier.tick", "config.json"):
        shutil.copy(SAMPLE / name, tmp_path / name)
    ours = json.loads((SAMPLE / "config.json").read_text())
    ours["tasks"][0]["dbrps"] = [{"db": "telemetry", "rp": "autogen"}]
    with pytest.raises(cfg.ConfigError, match=r"point_classifier.tick \(both found\)"):
        parse(ours, tmp_path)
    tick = tmp_path / "point_classifier.tick"
    tick.write_text(tick.read_text().replace('dbrp "telemetry"."autogen"', ""))
    ours["tasks"][0].pop("dbrps")
    with pytest.raises(cfg.ConfigError, match=r"point_classifier.tick \(neither found\)"):
        parse(ours, tmp_path)


@pytest.mark.parametrize(("tick", "kind"), [
    ("dbrp \"a\".\"b\"\nvar data = stream\n    |from()\n", "stream"),
    ("// stream\nbatch\n    |query('SELECT 1')\n", "batch"),
    ("var x = 'stream'\n", None),
])
def test_task_type_is_read_from_the_script(tick, kind):
    assert eii.task_type(tick) == kind


@pytest.mark.parametrize("form", FORMS)
def test_migrate_prints_our_format_that_runs_the_same(form, tmp_path):
    old = tmp_path / "old.json"
    old.write_text(json.dumps(FORMS[form]))
    shutil.copy(SAMPLE / "point_classifier.tick", tmp_path)
    done = subprocess.run([sys.executable, "-m", "entrypoint", "migrate", str(old)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    migrated = json.loads(done.stdout)
    assert cfg.schema_errors(migrated) == []
    assert not eii.is_eii(migrated)
    assert parse(migrated, tmp_path).tasks == parse(FORMS[form], tmp_path).tasks
    assert parse(migrated, tmp_path).udfs == parse(FORMS[form], tmp_path).udfs


def test_migrate_refuses_our_format_and_names_bad_keys(tmp_path):
    ours = tmp_path / "ours.json"
    shutil.copy(SAMPLE / "config.json", ours)
    done = subprocess.run([sys.executable, "-m", "entrypoint", "migrate", str(ours)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 2 and "not in EII's format" in done.stdout


@pytest.mark.kapacitor
@pytest.mark.influxdb
@pytest.mark.parametrize("form", FORMS)
def test_eii_file_as_it_is_gets_running_tasks(form, kapacitor_bin, influxdb, tmp_path):
    home = make_home(tmp_path)
    shutil.copy(SAMPLE / "point_classifier.tick", home / "tick_scripts")
    (home / "config" / "config.json").write_text(json.dumps(FORMS[form]))
    entry = LocalEntrypoint(home, tmp_path, kapacitor_bin, influxdb.url)
    try:
        entry.wait_log(r"warning: in EII's format .* Not used here: influxdb")
        entry.wait_tasks(["point_classifier"])
        assert entry.log_text().count("in EII's format") == 1
        assert entry.api.task("point_classifier")["dbrps"] == [
            {"db": "telemetry", "rp": "autogen"}]
    finally:
        entry.stop()


@pytest.mark.kapacitor
@pytest.mark.influxdb
def test_the_migrated_file_runs_without_the_warning(kapacitor_bin, influxdb, tmp_path):
    home = make_home(tmp_path)
    shutil.copy(SAMPLE / "point_classifier.tick", home / "config")
    old = home / "config" / "eii.json"
    old.write_text(json.dumps(WRAPPED))
    done = subprocess.run([sys.executable, "-m", "entrypoint", "migrate", str(old)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    (home / "config" / "config.json").write_text(done.stdout)
    entry = LocalEntrypoint(home, tmp_path, kapacitor_bin, influxdb.url)
    try:
        entry.wait_tasks(["point_classifier"])
        assert "EII's format" not in entry.log_text()
        assert "socket UDF humidity_classifier: started" in entry.log_text()
    finally:
        entry.stop()
