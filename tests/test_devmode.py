"""entrypoint.devmode: which tasks a change to a file or to config.json redefines or restarts."""

from __future__ import annotations

import json
from pathlib import Path

from entrypoint import config as cfg
from entrypoint.devmode import plan_changes
from localstack import ROOT


def parse(document: dict, tmp_path: Path) -> cfg.Config:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(document))
    return cfg.parse(path.read_text(), path, ROOT)


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
