"""config.json checks (Python validator vs the shipped schema), and the entrypoint's pure logic:
var mapping, restart back-off, and which tasks a DEV_MODE change touches."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from entrypoint import config as cfg
from entrypoint.devmode import plan_changes
from entrypoint.kapacitord import task_error
from entrypoint.settings import url_from_bind
from entrypoint.supervisor import Supervisor, backoff
from entrypoint.tasks import kapacitor_var

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "config" / "config.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
SHIPPED = [ROOT / "config" / "config.json", *sorted((ROOT / "Samples").glob("*/config.json"))]

GOOD = {
    "udfs": [{"name": "temperature_classifier", "script": "temperature_classifier.py",
              "mode": "stream", "timeout": "10s", "env": {"A": ""}, "args": ["--max-batch", "8"]}],
    "tasks": [{"name": "temperature_alerts", "tick_script": "temperature_alerts.tick",
               "type": "stream", "dbrps": [{"db": "telemetry", "rp": "autogen"}],
               "udfs": ["temperature_classifier"], "enabled": True,
               "vars": {"a": 1, "b": 2.5, "c": True, "d": "x",
                        "e": {"type": "duration", "value": "5m"}}}],
    "alert_handlers": [{"id": "log-anomalies", "topic": "anomalies", "kind": "log",
                        "options": {"path": "$data_dir/alerts/anomalies.log"}}],
}


def mutated(path: str, value: object = None, delete: bool = False) -> dict:
    """GOOD with one change at a dotted path (list indexes as numbers)."""
    document = copy.deepcopy(GOOD)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node = document
    for key in parents:
        node = node[key]
    if delete:
        del node[last]
    else:
        node[last] = value
    return document


BAD = {
    "missing rp": (mutated("tasks.0.dbrps.0.rp", delete=True),
                   "tasks[0].dbrps[0].rp: required key missing"),
    "missing udfs": (mutated("udfs", delete=True), "udfs: required key missing"),
    "unknown key": (mutated("tasks.0.prio", 3), "tasks[0].prio: unknown key"),
    "bad mode": (mutated("udfs.0.mode", "both"), "udfs[0].mode:"),
    "bad timeout": (mutated("udfs.0.timeout", "10"), "udfs[0].timeout:"),
    "timeout not a string": (mutated("udfs.0.timeout", 10), "udfs[0].timeout: expected a string"),
    "bad udf name": (mutated("udfs.0.name", "9lives"), "udfs[0].name:"),
    "env not strings": (mutated("udfs.0.env", {"A": 1}), "udfs[0].env.A: expected a string"),
    "enabled not bool": (mutated("tasks.0.enabled", "yes"), "tasks[0].enabled:"),
    "no dbrps": (mutated("tasks.0.dbrps", []), "tasks[0].dbrps: needs at least 1"),
    "list var": (mutated("tasks.0.vars.a", [1]), "tasks[0].vars.a:"),
    "var bad type": (mutated("tasks.0.vars.e", {"type": "date", "value": 1}),
                     "tasks[0].vars.e.type:"),
    "var no value": (mutated("tasks.0.vars.e", {"type": "duration"}),
                     "tasks[0].vars.e.value: required key missing"),
    "task type": (mutated("tasks.0.type", "batchy"), "tasks[0].type:"),
    "not an object": ([], "expected an object"),
    "handler without kind": (mutated("alert_handlers.0.kind", delete=True),
                             "alert_handlers[0].kind: required key missing"),
    "handler options not an object": (mutated("alert_handlers.0.options", "path=/x"),
                                      "alert_handlers[0].options: expected an object"),
    "handler bad topic": (mutated("alert_handlers.0.topic", "my topic"),
                          "alert_handlers[0].topic:"),
}


def test_duplicate_alert_handler_is_named(tmp_path):
    document = copy.deepcopy(GOOD)
    document["alert_handlers"] *= 2
    path = tmp_path / "config.json"
    path.write_text(json.dumps(document))
    with pytest.raises(cfg.ConfigError, match='alert_handlers: duplicate id "anomalies/log-anom'):
        cfg.parse(path.read_text(), path, ROOT)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_configs_match_the_schema_and_the_validator(path):
    document = json.loads(path.read_text())
    assert not list(VALIDATOR.iter_errors(document))
    assert cfg.load(path, ROOT).tasks


def test_schema_is_valid_and_accepts_the_good_example():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert cfg.schema_errors(GOOD) == []


@pytest.mark.parametrize("name", BAD)
def test_schema_errors_name_the_key(name):
    document, message = BAD[name]
    errors = cfg.schema_errors(document)
    assert any(message in e for e in errors), errors


def parse(document: dict, tmp_path: Path) -> cfg.Config:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(document))
    return cfg.parse(path.read_text(), path, ROOT)


def test_error_names_file_and_key_path(tmp_path):
    with pytest.raises(cfg.ConfigError) as info:
        parse(BAD["missing rp"][0], tmp_path)
    assert str(info.value) == f"{tmp_path}/config.json: tasks[0].dbrps[0].rp: required key missing"


def test_unknown_udf_lists_the_declared_ones(tmp_path):
    document = mutated("tasks.0.udfs", ["temperature_clasifier"])
    with pytest.raises(cfg.ConfigError, match=r'tasks\[0\] "temperature_alerts": unknown UDF '
                       r'"temperature_clasifier" \(declared: temperature_classifier\)'):
        parse(document, tmp_path)


def test_missing_tickscript_and_script_are_named(tmp_path):
    document = mutated("tasks.0.tick_script", "nope.tick")
    document["udfs"][0]["script"] = "nope.py"
    with pytest.raises(cfg.ConfigError) as info:
        parse(document, tmp_path)
    text = str(info.value)
    assert 'tasks[0] "temperature_alerts": TICKscript tick_scripts/nope.tick not found' in text
    assert 'udfs[0] "temperature_classifier": script udfs/nope.py not found' in text


def test_tickscript_may_call_only_listed_udfs(tmp_path):
    (tmp_path / "t.tick").write_text("// @commented()\nstream|from().where(lambda: 'a@b' == 'x')"
                                     "\n@temperature_classifier()\n@ghost()\n")
    document = mutated("tasks.0.tick_script", "t.tick")
    with pytest.raises(cfg.ConfigError) as info:
        parse(document, tmp_path)
    lines = str(info.value).splitlines()
    assert len(lines) == 1 and "calls @ghost" in lines[0] and "no such UDF" in lines[0]


def test_tick_next_to_config_wins(tmp_path):
    (tmp_path / "temperature_alerts.tick").write_text("stream|from()@temperature_classifier()")
    assert parse(GOOD, tmp_path).tasks["temperature_alerts"].tick_path.parent == tmp_path


def test_duplicates_and_bad_json(tmp_path):
    document = copy.deepcopy(GOOD)
    document["udfs"] *= 2
    document["tasks"] *= 2
    with pytest.raises(cfg.ConfigError) as info:
        parse(document, tmp_path)
    assert 'udfs: duplicate name "temperature_classifier"' in str(info.value)
    assert 'tasks: duplicate name "temperature_alerts"' in str(info.value)
    with pytest.raises(cfg.ConfigError, match=r"invalid JSON at line 2, column 1"):
        cfg.parse('{"udfs": [],\n}', tmp_path / "config.json", ROOT)


def test_vars_map_to_kapacitor_types():
    assert kapacitor_var(True) == {"type": "bool", "value": True}
    assert kapacitor_var(3) == {"type": "int", "value": 3}
    assert kapacitor_var(2.5) == {"type": "float", "value": 2.5}
    assert kapacitor_var("x") == {"type": "string", "value": "x"}
    assert kapacitor_var({"type": "duration", "value": "5m"}) == {"type": "duration",
                                                                  "value": "5m"}


def test_url_from_bind():
    assert url_from_bind(":9092") == "http://127.0.0.1:9092"
    assert url_from_bind("0.0.0.0:9100") == "http://127.0.0.1:9100"
    assert url_from_bind("10.0.0.2:9092") == "http://10.0.0.2:9092"


class FakeApi:
    def __init__(self) -> None:
        self.info = {"status": "enabled", "executing": True, "error": ""}
        self.calls: list[tuple[str, bool]] = []

    def task(self, _name):
        return self.info

    def set_status(self, name, enabled):
        self.calls.append((name, enabled))


def test_backoff_is_none_for_a_first_failure_then_doubles_to_a_cap():
    assert [backoff(n) for n in range(1, 10)] == [0, 1, 2, 4, 8, 16, 32, 60, 60]


def test_supervisor_restarts_at_once_then_backs_off_a_task_that_keeps_failing():
    now = [0.0]
    api = FakeApi()
    supervisor = Supervisor(api, clock=lambda: now[0])
    supervisor.watch(["t"])
    api.info = {"status": "enabled", "executing": False, "error": "udf exited"}
    supervisor.check()
    assert supervisor.next_due() == 0.0
    supervisor.check()
    assert api.calls == [("t", False), ("t", True)]
    supervisor.check()  # failed again at once: the next wait is 1 s
    assert supervisor.next_due() == 1.0
    now[0] = 1.0
    supervisor.check()
    assert api.calls == [("t", False), ("t", True)] * 2
    supervisor.check()  # and again: 2 s
    assert supervisor.next_due() == 3.0
    api.info = {"status": "enabled", "executing": True, "error": ""}
    for t in (4.0, 200.0, 400.0):
        now[0] = t
        supervisor.check()
    assert supervisor.health["t"].failures == 0


def test_supervisor_acts_on_failures_kapacitord_logs():
    now = [0.0]
    api = FakeApi()  # the API still says "executing": Kapacitor 1.8 only logs the failure
    supervisor = Supervisor(api, clock=lambda: now[0])
    supervisor.watch(["t"])
    line = ('ts=x lvl=error msg="encountered error" service=kapacitor task_master=main '
            'task=t node=udf2 err="keepalive timedout, last \\"x\\""')
    supervisor.failed(*task_error(line))
    assert supervisor.health["t"].error == 'keepalive timedout, last "x"'
    supervisor.check()
    assert api.calls == [("t", False), ("t", True)]


def dev_config(tmp_path: Path) -> cfg.Config:
    (tmp_path / "a.tick").write_text("stream|from()@temperature_classifier()")
    (tmp_path / "b.tick").write_text("stream|from()@moving_average().field('t').size(2)")
    (tmp_path / "c.tick").write_text("stream|from()|log()")
    udfs = [{"name": "temperature_classifier", "script": "temperature_classifier.py",
             "mode": "stream", "timeout": "10s"},
            {"name": "moving_average", "script": "moving_average.py", "mode": "stream",
             "timeout": "10s"}]
    base = {"type": "stream", "dbrps": [{"db": "d", "rp": "r"}], "enabled": True}
    tasks = [{"name": "a", "tick_script": "a.tick", "udfs": ["temperature_classifier"], **base},
             {"name": "b", "tick_script": "b.tick", "udfs": ["moving_average"], **base},
             {"name": "c", "tick_script": "c.tick", "udfs": [], **base}]
    return parse({"udfs": udfs, "tasks": tasks}, tmp_path)


def test_dev_plan_maps_files_to_tasks(tmp_path):
    config = dev_config(tmp_path)
    udfs = ROOT / "udfs"

    def plan(*paths: Path, reload=None):
        return plan_changes(set(paths), config, ROOT, reload or (lambda: config))

    only_a = plan(tmp_path / "a.tick")
    assert (only_a.define, only_a.restart, only_a.restart_kapacitord) == ({"a"}, set(), "")
    assert plan(udfs / "moving_average.py").restart == {"b"}
    assert plan(udfs / "threshold.py").restart == {"a"}  # imported by temperature_classifier
    assert plan(udfs / "udfkit" / "agent.py").restart == {"a", "b"}
    assert not plan(udfs / "mirror.py")


def test_dev_plan_for_config_changes(tmp_path):
    config = dev_config(tmp_path)
    document = json.loads(config.path.read_text())
    document["tasks"] = document["tasks"][:2]
    document["tasks"][1]["vars"] = {"x": 1}
    changed = plan_changes({config.path}, config, ROOT, lambda: parse(document, tmp_path))
    assert (changed.delete, changed.define, changed.restart_kapacitord) == ({"c"}, {"b"}, "")
    document["udfs"].append({"name": "mirror", "script": "mirror.py", "mode": "stream",
                             "timeout": "5s"})
    changed = plan_changes({config.path}, config, ROOT, lambda: parse(document, tmp_path))
    assert "new UDF mirror" in changed.restart_kapacitord


@pytest.mark.parametrize("path", ["{tmp}/outside/x.log", "$data_dir/../outside/x.log",
                                  "../x.log", "$data_dir", "link/x.log"])
def test_log_handler_paths_stay_under_the_data_dir(tmp_path, path):
    from entrypoint.alert_handlers import define_all
    from entrypoint.config import AlertHandler

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "link").symlink_to(tmp_path)

    defined = []

    class Api:
        def define_topic_handler(self, *args):
            defined.append(args)

    path = path.format(tmp=tmp_path)
    handler = AlertHandler(id="h", topic="anomalies", kind="log", options={"path": path})
    statuses = define_all(Api(), [handler], data_dir)
    assert statuses == {"anomalies/h (log)": statuses["anomalies/h (log)"]}
    assert "outside the data directory" in statuses["anomalies/h (log)"]
    assert defined == []
    assert not (tmp_path / "outside").exists()


def test_log_handler_relative_path_is_taken_from_the_data_dir(tmp_path):
    from entrypoint.alert_handlers import options
    from entrypoint.config import AlertHandler

    handler = AlertHandler(id="h", topic="t", kind="log", options={"path": "alerts/t.log"})
    assert options(handler, tmp_path) == {"path": str(tmp_path.resolve() / "alerts/t.log")}
    assert (tmp_path / "alerts").is_dir()


def test_a_udf_error_response_is_a_failure_and_a_late_echo_of_it_is_ignored():
    wall = [1000.0]
    api = FakeApi()
    supervisor = Supervisor(api, clock=lambda: 0.0, wall=lambda: wall[0])
    supervisor.watch(["t"])
    line = ('ts=1970-01-01T00:16:39.500Z lvl=error msg="received error message" '
            'service=kapacitor task_master=main task=t node=udf2 '
            'err="handler probe.point() has been running for 3.0 s"')
    name, error, when = task_error(line)
    assert (name, error, when) == ("t", "handler probe.point() has been running for 3.0 s", 999.5)
    supervisor.failed(name, error, when)
    supervisor.check()
    assert api.calls == [("t", False), ("t", True)]
    late = ('ts=1970-01-01T00:16:39.900Z lvl=error msg="encountered error" service=kapacitor '
            'task_master=main task=t node=udf2 err="keepalive timedout"')
    supervisor.failed(*task_error(late))  # logged before our restart: the old run's
    assert supervisor.health["t"].restart_at is None and supervisor.health["t"].failures == 1
