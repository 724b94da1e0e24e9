"""config.json: the schema and the validator agree, errors name the key, and task vars map to
Kapacitor's types."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from entrypoint import config as cfg
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
    "dbrp not an object": (mutated("tasks.0.dbrps", ["telemetry"]), "tasks[0].dbrps[0]:"),
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
