"""Socket UDFs in the image: Samples/eii_socket_udfs in a read-only container as `kapacitor`.

The entrypoint starts both classifiers' socket servers in a 0700 directory under /tmp (the
container's tmpfs) before kapacitord; a server killed inside the container comes back with
its task; `docker stop` ends everything with status 0.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from kapacitorkit.api import ApiError, KapacitorApi
from tests.conftest import ROOT
from tests.dockerbed import (
    Container,
    compose_tag,
    docker,
    ensure_base_images,
    influx_query,
    influx_rows,
    network,
    poll,
    run_influxdb,
    volume,
)

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]
SAMPLE = "/opt/kapacitor-udfs/samples/eii_socket_udfs"


class SocketBox:
    """InfluxDB and the image running the sample, on one network."""

    def __init__(self, image: str) -> None:
        ensure_base_images("influxdb")
        self.net = network()
        self.influx = run_influxdb(self.net, compose_tag("influxdb"))
        self.influx_url = f"http://127.0.0.1:{self.influx.port(8086)}"
        influx_query(self.influx_url, 'CREATE DATABASE "sample_eii"')
        self.box = Container.run(
            image, "--network", self.net, "--read-only", "--tmpfs", "/tmp",
            "-v", f"{volume()}:/var/lib/kapacitor",
            "-v", f"{ROOT / 'Samples/eii_socket_udfs'}:{SAMPLE}:ro",
            "-e", f"KAPACITOR_CONFIG_JSON={SAMPLE}/config.json",
            "-e", "INFLUXDB_URL=http://influxdb:8086", "-p", "127.0.0.1::9092")
        self.api = KapacitorApi(f"http://127.0.0.1:{self.box.port(9092)}")
        self.wait_executing()

    def wait_executing(self) -> None:
        def executing() -> bool:
            try:
                return bool(self.api.task("point_classifier").get("executing"))
            except (OSError, ApiError):
                return False
        poll(executing, 180, f"point_classifier to execute:\n{self.box.logs()[-3000:]}")

    def servers(self) -> dict[str, tuple[int, str, str]]:
        """Socket UDF name -> (pid, socket path's mode, its directory's mode and owner)."""
        code = ("import os,json,stat\nout={}\n"
                "for p in filter(str.isdigit, os.listdir('/proc')):\n"
                "    try: argv=open(f'/proc/{p}/cmdline','rb').read().decode().split('\\0')\n"
                "    except OSError: continue\n"
                "    if '--socket' in argv:\n"
                "        path=argv[argv.index('--socket')+1]; d=os.path.dirname(path)\n"
                "        out[os.path.basename(path)[:-5]]=(int(p),"
                " oct(stat.S_IMODE(os.stat(path).st_mode)),"
                " oct(stat.S_IMODE(os.stat(d).st_mode))+' '+str(os.stat(d).st_uid))\n"
                "print(json.dumps(out))")
        found = json.loads(self.box.exec("python", "-c", code))
        return {k: tuple(v) for k, v in found.items()}

    def results(self) -> list[list]:
        return influx_rows(self.influx_url, "SELECT sensor, temperature, humidity FROM "
                           "point_classifier_results", db="sample_eii")

    def remove(self) -> None:
        for box in (self.box, self.influx):
            box.remove()
        docker("network", "rm", self.net, check=False)


@pytest.fixture(scope="module")
def socket_box(kapacitor_image: str) -> Iterator[SocketBox]:
    made = SocketBox(kapacitor_image)
    yield made
    made.remove()


def write(api: KapacitorApi, readings: list[tuple[str, float, float]]) -> None:
    start = time.time_ns() - len(readings) * 10**9
    api.write("".join(f"point_data,sensor={s} temperature={t},humidity={h} {start + i * 10**9}\n"
                      for i, (s, t, h) in enumerate(readings)), db="telemetry")


def test_servers_run_as_kapacitor_in_a_private_dir_and_classify(socket_box: SocketBox) -> None:
    found = socket_box.servers()
    assert set(found) == {"temperature_classifier", "humidity_classifier"}
    uid = socket_box.box.exec("id", "-u").strip()
    for _pid, sock_mode, dir_mode in found.values():
        assert sock_mode == "0o660" and dir_mode == f"0o700 {uid}", found
    write(socket_box.api, [("office", 22.0, 40.0), ("office", 27.5, 40.0),
                           ("cellar", 14.0, 80.0), ("cellar", 19.0, 10.0)])
    poll(lambda: len(socket_box.results()) == 2, 30, "two classified points in InfluxDB")
    assert sorted(r[1:] for r in socket_box.results()) == [
        ["cellar", 14, 80], ["office", 27.5, 40]]


def test_a_killed_server_comes_back_with_its_task(socket_box: SocketBox) -> None:
    old = socket_box.servers()["humidity_classifier"][0]
    socket_box.box.exec("sh", "-c", f"kill -9 {old}")
    poll(lambda: socket_box.servers().get("humidity_classifier", (old,))[0] != old, 30,
         f"a new humidity_classifier server:\n{socket_box.box.logs()[-2000:]}")
    poll(lambda: "socket UDF humidity_classifier restarted" in socket_box.box.logs(), 30,
         "the task restart")
    socket_box.wait_executing()
    before = len(socket_box.results())
    write(socket_box.api, [("attic", 31.0, 70.0)])
    poll(lambda: len(socket_box.results()) == before + 1, 30,
         f"the point after the restart:\n{socket_box.box.logs()[-2000:]}")


def test_docker_stop_ends_the_servers_and_exits_zero(socket_box: SocketBox) -> None:
    docker("stop", "-t", "30", socket_box.box.name, timeout=60)
    state = socket_box.box.state()
    assert state["ExitCode"] == 0, socket_box.box.logs()[-2000:]
    assert "kapacitord stopped with status 0" in socket_box.box.logs()
