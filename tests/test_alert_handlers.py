"""entrypoint.alert_handlers: a log handler writes only under the data directory."""

from __future__ import annotations

import pytest

from entrypoint.alert_handlers import define_all, options
from entrypoint.config import AlertHandler


@pytest.mark.parametrize("path", ["{tmp}/outside/x.log", "$data_dir/../outside/x.log",
                                  "../x.log", "$data_dir", "link/x.log"])
def test_log_handler_paths_stay_under_the_data_dir(tmp_path, path):
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
    handler = AlertHandler(id="h", topic="t", kind="log", options={"path": "alerts/t.log"})
    assert options(handler, tmp_path) == {"path": str(tmp_path.resolve() / "alerts/t.log")}
    assert (tmp_path / "alerts").is_dir()
