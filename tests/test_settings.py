"""entrypoint.settings: what the environment's addresses become."""

from entrypoint.settings import url_from_bind


def test_url_from_bind():
    assert url_from_bind(":9092") == "http://127.0.0.1:9092"
    assert url_from_bind("0.0.0.0:9100") == "http://127.0.0.1:9100"
    assert url_from_bind("10.0.0.2:9092") == "http://10.0.0.2:9092"
