"""EII's data path: points written only to InfluxDB reach the stream tasks by subscription.

config.json `"ingest": "influxdb_subscriptions"` (Samples/influxdb_subscription) turns on
Kapacitor's InfluxDB subscription for exactly the databases its stream tasks read; results go
to a database of their own. Checked through real influxd, kapacitord and the entrypoint: each
point is scored once, and nothing Kapacitor writes comes back to it.
"""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import pytest

from entrypoint import config as cfg
from entrypoint import ingest
from entrypoint.kapacitord import write_conf
from entrypoint.settings import Settings
from localstack.entrypoint import LocalEntrypoint, make_home
from localstack.influxd import query as influx_query
from localstack.influxd import series_rows, subscribed
from localstack.polling import wait_for
from tests.conftest import ROOT
from tests.test_container_files import BASE, compose_config, telegraf

SAMPLE = ROOT / "Samples" / "influxdb_subscription"
RESULTS_DB = "kapacitor_results"


def sample(tmp_path: Path, **changes) -> cfg.Config:
    for path in SAMPLE.glob("*.tick"):
        shutil.copy(path, tmp_path)
    document = {**json.loads((SAMPLE / "config.json").read_text()), **changes}
    return cfg.parse(json.dumps(document), tmp_path / "config.json", ROOT)


def conf_text(config: cfg.Config, tmp_path: Path) -> str:
    settings = Settings.from_env({"KAPACITOR_DATA_DIR": str(tmp_path / "data"),
                                  "INFLUXDB_URL": "http://influxdb:8086"})
    return Path(write_conf(config, settings)).read_text()


def test_subscriptions_cover_what_stream_tasks_read_on_the_influxdb_cluster(tmp_path):
    config = sample(tmp_path)
    assert ingest.subscriptions(config) == {"telemetry": ["autogen"]}
    text = conf_text(config, tmp_path)
    default, influxdb = text.split("[[influxdb]]")[1:3]
    assert "disable-subscriptions = true" in default
    assert "disable-subscriptions = false" in influxdb
    assert '[influxdb.subscriptions]\n    "telemetry" = ["autogen"]' in influxdb
    assert influxdb.index("[influxdb.subscriptions]") < influxdb.index("[udf]")


def test_writes_path_subscribes_to_nothing(tmp_path):
    config = sample(tmp_path, ingest="kapacitor_writes")
    assert ingest.subscriptions(config) == {}
    text = conf_text(config, tmp_path)
    assert text.count("disable-subscriptions = true") == 2
    assert "[influxdb.subscriptions]" not in text


def test_results_into_a_subscribed_database_are_refused_naming_the_task(tmp_path):
    for path in SAMPLE.glob("*.tick"):
        shutil.copy(path, tmp_path)
    tick = tmp_path / "uncomfortable.tick"
    tick.write_text(tick.read_text().replace("'kapacitor_results'", "'telemetry'"))
    document = json.loads((SAMPLE / "config.json").read_text())
    with pytest.raises(cfg.ConfigError) as refused:
        cfg.parse(json.dumps(document), tmp_path / "config.json", ROOT)
    assert ('tasks "uncomfortable": uncomfortable.tick writes to telemetry.autogen, which '
            'Kapacitor subscribes to ("ingest": "influxdb_subscriptions")') in str(refused.value)
    assert "machine_failure" not in str(refused.value)
    document["ingest"] = "kapacitor_writes"  # the writes path has no such loop
    assert cfg.parse(json.dumps(document), tmp_path / "config.json", ROOT).tasks


def test_ingest_is_one_of_two_choices():
    document = json.loads((SAMPLE / "config.json").read_text())
    document["ingest"] = "mqtt"
    assert any(e.startswith('ingest: "mqtt" is not one of kapacitor_writes, influxdb_sub')
               for e in cfg.schema_errors(document))


@pytest.mark.parametrize(("tick", "found"), [
    ("|influxDBOut()\n  .database('a')\n  .measurement('m')", [("a", "autogen")]),
    ("|influxDBOut().create().database('a').retentionPolicy('r')", [("a", "r")]),
    ("// |influxDBOut().database('a')\n|influxDBOut().database(db)", []),
])
def test_where_influxdbout_writes(tick, found):
    assert ingest.writes(tick) == found


# -- through influxd, kapacitord and the entrypoint ------------------------------------------


def drop_subscriptions(url: str, port: str) -> None:
    """Kapacitor leaves its subscriptions behind; this session's influxd outlives it."""
    for db, row in series_rows(influx_query(url, "SHOW SUBSCRIPTIONS")):
        if f":{port}" in str(row["destinations"]):
            influx_query(url, f'DROP SUBSCRIPTION "{row["name"]}" ON '
                              f'"{db}"."{row["retention_policy"]}"')


def results(influxdb, measurement: str) -> list[dict]:
    return influxdb.query(f"SELECT * FROM {measurement}", RESULTS_DB)


@pytest.mark.kapacitor
@pytest.mark.influxdb
def test_points_written_only_to_influxdb_come_out_scored_once(kapacitor_bin, influxdb,
                                                               tmp_path):
    influxdb.query(f'DROP DATABASE "{RESULTS_DB}"')
    influxdb.query('CREATE DATABASE "telemetry"')
    home = make_home(tmp_path)
    for path in SAMPLE.glob("*.*"):
        shutil.copy(path, home / "config" / path.name)
    entry = LocalEntrypoint(home, tmp_path, kapacitor_bin, influxdb.url,
                            KAPACITOR_HOSTNAME="127.0.0.1")
    port = entry.api.base.rsplit(":", 1)[-1]
    try:
        entry.wait_tasks(["machine_failure", "uncomfortable"])
        assert subscribed(influxdb.url, "telemetry", f":{port}"), entry.log_text()[-2000:]
        lines = (SAMPLE / "points.lp").read_text().splitlines()
        influxdb.write("".join(f"{line} {i + 1_700_000_000}\n" for i, line in enumerate(lines)),
                       db="telemetry", precision="s")

        assert wait_for(lambda: len(results(influxdb, "machine_predictions")) == 2
                        and len(results(influxdb, "uncomfortable")) == 2, 20), \
            entry.log_text()[-3000:]
        predictions = {r["machine"]: r for r in results(influxdb, "machine_predictions")}
        assert predictions["mill-2"]["prediction"] == 1
        assert predictions["mill-1"]["prediction"] == 0
        assert 0.0 <= predictions["mill-1"]["failure_probability"] < 0.5
        assert sorted(r["temperature"] for r in results(influxdb, "uncomfortable")) == [14, 27.5]

        # Once each: every input point reached its task's from() exactly once, and only the
        # input database is subscribed (the results database never feeds back).
        def collected(task: str) -> int:
            stats = entry.api.task(task)["stats"]["node-stats"]
            return next(v["collected"] for k, v in stats.items() if k.startswith("from"))

        assert wait_for(lambda: (collected("machine_failure"), collected("uncomfortable"))
                        == (2, 3), 10)
        databases = {db for db, row in series_rows(influx_query(influxdb.url,
                                                                "SHOW SUBSCRIPTIONS"))
                     if f":{port}" in str(row["destinations"])}
        assert databases == {"telemetry"}
        assert len(results(influxdb, "machine_predictions")) == 2
    finally:
        entry.stop()
        drop_subscriptions(influxdb.url, port)


def test_compose_override_runs_the_sample_and_telegraf_writes_influxdb_only():
    merged = compose_config(BASE, ROOT / "docker-compose-subscriptions.override.yml")
    kapacitor = merged["services"]["kapacitor"]
    target = "/opt/kapacitor-udfs/samples/influxdb_subscription"
    assert kapacitor["environment"]["KAPACITOR_CONFIG_JSON"] == f"{target}/config.json"
    assert f"{SAMPLE}:{target}:ro" in kapacitor["volumes"]
    assert kapacitor["environment"]["KAPACITOR_HOSTNAME"] == "kapacitor"  # InfluxDB calls back
    variant = ROOT / "deploy/telegraf/telegraf-subscriptions.conf"
    assert merged["services"]["telegraf"]["volumes"] == [
        f"{variant}:/etc/telegraf/telegraf.conf:ro"]
    base, subscribed_conf = telegraf(), tomllib.loads(variant.read_text())
    to_kapacitor = [o for o in base["outputs"]["influxdb"] if "kapacitor" in str(o["urls"])]
    assert len(to_kapacitor) == 1
    assert subscribed_conf["outputs"]["influxdb"] == [o for o in base["outputs"]["influxdb"]
                                                      if o not in to_kapacitor]
    assert {k: v for k, v in subscribed_conf.items() if k != "outputs"} == \
        {k: v for k, v in base.items() if k != "outputs"}
