"""The entrypoint's start-up checks and health check, without Docker (tests/test_docker.py
runs them in the image)."""

from __future__ import annotations

from pathlib import Path

import pytest

from entrypoint import container, health
from entrypoint.settings import Settings


def test_unwritable_names_the_path_the_uid_and_the_owner(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where a directory should be")
    message = container.unwritable([tmp_path / "ok", blocker / "conf"])
    assert message.startswith(f"cannot write to {blocker / 'conf'} (")
    assert "runs as uid" in message and f"{blocker} is owned by uid" in message
    assert container.unwritable([tmp_path / "ok", tmp_path / "ok/conf"]) == ""


def test_waits_for_influxdb_and_says_why(capsys: pytest.CaptureFixture) -> None:
    answers = iter(["Connection refused", "Connection refused", ""])
    container.wait_for_influxdb("http://influxdb:8086", timeout=10, interval=0.01,
                                ping=lambda url: next(answers))
    out = capsys.readouterr().out
    assert "waiting for InfluxDB at http://influxdb:8086: Connection refused" in out
    assert "InfluxDB at http://influxdb:8086 answers" in out


def test_gives_up_on_influxdb_naming_what_to_check() -> None:
    with pytest.raises(container.Unreachable, match=r"did not answer within 0s \(no route\)"
                       r".*INFLUXDB_URL"):
        container.wait_for_influxdb("http://x:8086", timeout=0, ping=lambda url: "no route")
    container.wait_for_influxdb("", timeout=0, ping=lambda url: "never called")


def test_hostname_defaults_like_the_official_image() -> None:
    assert Settings.from_env({"HOSTNAME": "c0ffee"}).hostname == "c0ffee"
    env = {"HOSTNAME": "c0ffee", "KAPACITOR_HOSTNAME": "kapacitor"}
    assert Settings.from_env(env).hostname == "kapacitor"


class Tasks:
    def __init__(self, tasks: list[dict]) -> None:
        self.base, self.listed = "http://k:9092", tasks

    def tasks(self, *fields: str) -> list[dict]:
        return self.listed


def test_health_wants_every_expected_task_executing() -> None:
    api = Tasks([{"id": "a", "executing": True}, {"id": "b", "executing": False,
                                                  "status": "disabled"},
                 {"id": "c", "executing": False, "error": "udf died"}])
    assert health.problems(api, ["a"]) == []
    assert health.problems(api, ["a", "b", "c", "d"]) == [
        "task b: not executing (disabled)", "task c: udf died", "task d: not defined"]


def test_health_reports_an_unreachable_kapacitord() -> None:
    class Down(Tasks):
        def tasks(self, *fields: str) -> list[dict]:
            raise ConnectionRefusedError("refused")

    assert health.problems(Down([]), ["a"])[0].startswith("kapacitord does not answer at")
