"""Sinks and pacing for the simulator: MQTT (compose stack) and HTTP line protocol (local demo).

Why two sinks: in the compose stack data goes sensor -> MQTT -> Telegraf -> InfluxDB and
Kapacitor, as it would in a plant. Without Docker the demo skips MQTT and POSTs the same line
protocol straight to InfluxDB's /write and Kapacitor's /kapacitor/v1/write. The payload is the
same in both cases: one line of InfluxDB line protocol per point (Telegraf parses it with
data_format = "influx", which keeps `product_type` an integer field).

paho-mqtt is imported only when the MQTT sink is used, so the HTTP demo and the tests need
nothing beyond the standard library.
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

from simulator.generate import Point, to_line_protocol, to_line_protocol_batch, topic_for


class SinkError(RuntimeError):
    """A sink could not deliver a batch."""


class Sink(Protocol):
    """Somewhere points go."""

    def write(self, points: Sequence[Point]) -> None: ...

    def close(self) -> None: ...


class HttpSink:
    """POSTs line protocol to InfluxDB-style write URLs (InfluxDB /write, Kapacitor write).

    The URLs are used as given, so they carry db (and rp: Kapacitor needs it explicitly).
    """

    def __init__(self, urls: Sequence[str], timeout_s: float = 10.0) -> None:
        if not urls:
            raise ValueError("HttpSink needs at least one URL")
        self.urls = list(urls)
        self.timeout_s = timeout_s

    def _post(self, url: str, body: bytes) -> None:
        """One write request; any non-2xx answer is an error (InfluxDB answers 204)."""
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "text/plain; charset=utf-8"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as err:
            detail = err.read(500).decode("utf-8", "replace")
            raise SinkError(f"POST {url}: HTTP {err.code}: {detail}") from err
        except (urllib.error.URLError, OSError) as err:
            raise SinkError(f"POST {url}: {err}") from err

    def write(self, points: Sequence[Point]) -> None:
        """Send the batch to every URL; report all failures together."""
        body = to_line_protocol_batch(points).encode("utf-8")
        errors = []
        for url in self.urls:
            try:
                self._post(url, body)
            except SinkError as err:
                errors.append(str(err))
        if errors:
            raise SinkError("; ".join(errors))

    def close(self) -> None:
        """Nothing to release: each write is its own request."""


def _paho_client(client_id: str) -> Any:
    """A paho-mqtt 2.x client (imported here so other sinks do not need paho)."""
    import paho.mqtt.client as mqtt

    return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)


class MqttSink:
    """Publishes each point as one line of line protocol to sensors/<measurement>/<id>."""

    def __init__(
        self,
        host: str,
        port: int = 1883,
        qos: int = 0,
        connect_tries: int = 30,
        client_factory: Callable[[str], Any] = _paho_client,
    ) -> None:
        self.qos = qos
        self.client = client_factory("telemetry-simulator")
        self._connect(host, port, connect_tries)
        self.client.loop_start()

    def _connect(self, host: str, port: int, tries: int) -> None:
        """Retry for a while: in compose the broker may start after the simulator."""
        for attempt in range(1, tries + 1):
            try:
                self.client.connect(host, port, keepalive=30)
                return
            except OSError as err:
                if attempt == tries:
                    raise SinkError(f"MQTT {host}:{port}: {err}") from err
                print(f"simulator: MQTT {host}:{port} not ready ({err}), retrying", file=sys.stderr)
                time.sleep(1.0)

    def write(self, points: Sequence[Point]) -> None:
        """Publish one message per point; paho queues them while reconnecting."""
        for point in points:
            info = self.client.publish(topic_for(point), to_line_protocol(point), qos=self.qos)
            if info.rc != 0:
                raise SinkError(f"MQTT publish to {topic_for(point)} failed: rc={info.rc}")

    def close(self) -> None:
        """Flush and disconnect."""
        self.client.loop_stop()
        self.client.disconnect()


class StdoutSink:
    """Prints line protocol (dry run, or piping into another tool)."""

    def write(self, points: Sequence[Point]) -> None:
        sys.stdout.write(to_line_protocol_batch(points))
        sys.stdout.flush()

    def close(self) -> None:
        """Nothing to release."""


def batched(steps: Iterable[list[Point]], size: int) -> Iterator[list[Point]]:
    """Regroup time steps into batches of about `size` points (fast mode)."""
    batch: list[Point] = []
    for step in steps:
        batch.extend(step)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def deliver(sinks: Sequence[Sink], points: Sequence[Point]) -> int:
    """Write to every sink; return the number of failed sinks (errors go to stderr)."""
    failed = 0
    for sink in sinks:
        try:
            sink.write(points)
        except SinkError as err:
            failed += 1
            print(f"simulator: {err}", file=sys.stderr)
    return failed


def run_realtime(
    sinks: Sequence[Sink],
    steps: Iterable[list[Point]],
    step_s: float,
    start_s: float,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Send each step when the wall clock reaches its timestamp; return the failure count."""
    failures = 0
    for i, step in enumerate(steps):
        delay = start_s + i * step_s - clock()
        if delay > 0:
            sleep(delay)
        failures += deliver(sinks, step)
    return failures


def run_fast(sinks: Sequence[Sink], steps: Iterable[list[Point]], batch_size: int = 5000) -> int:
    """Send pre-timestamped steps as fast as the sinks take them; return the failure count."""
    return sum(deliver(sinks, batch) for batch in batched(steps, batch_size))
