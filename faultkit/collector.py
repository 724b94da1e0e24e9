"""A loopback HTTP server that keeps every point Kapacitor's httpPost() node sends it.

The fault runs compare a task's whole output with a clean run's, point by point;
httpPost delivers each point as JSON with no sink in between that could drop or
rewrite one (InfluxDB would refuse a 100 KB tag, for instance).
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Collector:
    """Points by URL path (one path per task): ``collector.url("/rfc")`` for the TICKscript."""

    def __init__(self) -> None:
        self.points: dict[str, list[dict]] = defaultdict(list)
        self._lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                collector._add(self.path, body)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def _add(self, path: str, body: bytes) -> None:
        data = json.loads(body)
        found = []
        for series in data.get("series") or [data]:  # a batch's series, or one point
            columns = series.get("columns") or []
            for values in series.get("values") or []:
                row = dict(zip(columns, values, strict=False))
                found.append({"tags": series.get("tags") or {}, **row})
        with self._lock:
            self.points[path].extend(found)

    def count(self, path: str) -> int:
        with self._lock:
            return len(self.points[path])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
