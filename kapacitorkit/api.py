"""A small client of Kapacitor's HTTP API (standard library only: the image has no requests)."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kapacitorkit import auth


class ApiError(RuntimeError):
    """Kapacitor answered with an error status; the message carries its text."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


_FROM_ENV: Any = object()


class KapacitorApi:
    """Kapacitor's HTTP API; credentials default to the environment's (kapacitorkit.auth)."""

    def __init__(self, base_url: str, timeout: float = 10.0,
                 credentials: auth.Credentials | None = _FROM_ENV) -> None:
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self.credentials = auth.from_env() if credentials is _FROM_ENV else credentials

    def _call(self, method: str, path: str, body: Any = None, raw: bytes | None = None,
              query: Mapping[str, str | list[str]] | None = None) -> Any:
        url = f"{self.base}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(url, data=data, method=method)
        if body is not None:
            request.add_header("Content-Type", "application/json")
        if self.credentials is not None:
            request.add_header("Authorization", self.credentials.header)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            with contextlib.suppress(ValueError):
                detail = json.loads(detail).get("error", detail)
            raise ApiError(f"{method} {path}: HTTP {exc.code}: {detail}", exc.code) from None
        return json.loads(text) if text.strip() else None

    def ping(self) -> bool:
        try:
            self._call("GET", "/kapacitor/v1/ping")
            return True
        except (OSError, ApiError):
            return False

    def wait_ready(self, timeout: float, alive: Any = None) -> None:
        """Poll /ping until it answers; `alive()` returning False aborts (the process died)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ping():
                return
            if alive is not None and not alive():
                raise ApiError("kapacitord exited before answering /ping")
            time.sleep(0.1)
        raise ApiError(f"kapacitord did not answer /ping within {timeout}s")

    # -- tasks -------------------------------------------------------------------
    def define_task(self, task_id: str, script: str, dbrps: Sequence[Mapping[str, str]],
                    task_type: str = "stream", vars: Mapping[str, Any] | None = None,
                    enabled: bool = False) -> dict:
        """Create the task, or replace its definition if it exists (it keeps its status)."""
        body: dict[str, Any] = {"type": task_type, "dbrps": list(dbrps), "script": script,
                                "status": "enabled" if enabled else "disabled"}
        if vars:
            body["vars"] = dict(vars)
        try:
            return self._call("PATCH", f"/kapacitor/v1/tasks/{task_id}", body)
        except ApiError as exc:
            if exc.status != 404:  # 404: no such task yet
                raise
        return self._call("POST", "/kapacitor/v1/tasks", {"id": task_id, **body})

    def set_status(self, task_id: str, enabled: bool) -> dict:
        status = "enabled" if enabled else "disabled"
        return self._call("PATCH", f"/kapacitor/v1/tasks/{task_id}", {"status": status})

    def task(self, task_id: str) -> dict:
        return self._call("GET", f"/kapacitor/v1/tasks/{task_id}",
                          query={"dot-view": "labels", "script-format": "raw"})

    def tasks(self, *fields: str) -> list[dict]:
        """Every task (its id and `fields`, default status), in one request."""
        return self._call("GET", "/kapacitor/v1/tasks",
                          query={"fields": list(fields or ["status"]), "limit": "1000"})["tasks"]

    def delete_task(self, task_id: str) -> None:
        self._call("DELETE", f"/kapacitor/v1/tasks/{task_id}")

    def wait_task(self, task_id: str, timeout: float = 20.0, missing_ok: bool = False) -> dict:
        """Poll until the task executes or reports an error (enable returns before Init ran).

        With `missing_ok`, a task not defined yet (someone else defines it) is
        waited for too; at the deadline it answers {} instead of raising.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                info = self.task(task_id)
            except ApiError:
                if not missing_ok:
                    raise
                info = {}
            if info.get("error") or info.get("executing") or time.monotonic() > deadline:
                return info
            time.sleep(0.1)

    def not_executing(self, names: Iterable[str], timeout: float = 30.0) -> list[str]:
        """Wait for each task (someone else defines it, maybe not yet) to execute; return the
        names of those that did not within `timeout` each."""
        return [n for n in names
                if not self.wait_task(n, timeout, missing_ok=True).get("executing")]

    def http_out(self, task_id: str, endpoint: str) -> dict:
        return self._call("GET", f"/kapacitor/v1/tasks/{task_id}/{endpoint}")

    def http_out_rows(self, task_id: str, endpoint: str) -> list[dict[str, Any]]:
        """What a task's httpOut node holds, a dict per row (its series' tags and columns);
        a series without values (as right after the task restarted) adds no row."""
        return [{**series.get("tags", {}), **dict(zip(series["columns"], values, strict=True))}
                for series in self.http_out(task_id, endpoint).get("series") or []
                for values in series.get("values") or []]

    def define_topic_handler(self, topic: str, handler_id: str, kind: str,
                             options: Mapping[str, Any]) -> None:
        """Create or replace a topic handler (`kapacitor define-topic-handler`)."""
        body = {"id": handler_id, "kind": kind, "options": dict(options)}
        try:
            self._call("PUT", f"/kapacitor/v1/alerts/topics/{topic}/handlers/{handler_id}",
                       body=body)
        except ApiError as exc:
            if exc.status != 404:
                raise
            self._call("POST", f"/kapacitor/v1/alerts/topics/{topic}/handlers", body=body)

    def delete_topic_handler(self, topic: str, handler_id: str) -> None:
        self._call("DELETE", f"/kapacitor/v1/alerts/topics/{topic}/handlers/{handler_id}")

    def topic_handlers(self, topic: str) -> dict[str, dict]:
        """The handlers of a topic: options by handler id."""
        answer = self._call("GET", f"/kapacitor/v1/alerts/topics/{topic}/handlers")
        return {h["id"]: h["options"] for h in answer.get("handlers", [])}

    def alert_events(self, topic: str) -> dict[str, dict]:
        """The current state of each alert published to `topic`, by alert id ({} before the
        topic's first alert: Kapacitor creates a topic when something is published to it)."""
        try:
            answer = self._call("GET", f"/kapacitor/v1/alerts/topics/{topic}/events")
        except ApiError as exc:
            if exc.status == 404:  # no such topic (yet)
                return {}
            raise
        return {event["id"]: event["state"] for event in answer.get("events", [])}

    # -- users -------------------------------------------------------------------
    def ensure_admin(self, credentials: auth.Credentials) -> str:
        """Create the user as an admin, or set its password and type; 'created'/'updated'."""
        path = f"/kapacitor/v1/users/{urllib.parse.quote(credentials.username)}"
        body = {"password": credentials.password, "type": "admin"}
        try:
            self._call("GET", path)
        except ApiError as exc:
            if exc.status != 404:
                raise
            self._call("POST", "/kapacitor/v1/users", {"name": credentials.username, **body})
            return "created"
        self._call("PATCH", path, body)
        return "updated"

    # -- data --------------------------------------------------------------------
    def write(self, lines: str | bytes, db: str, rp: str = "autogen",
              precision: str = "n") -> None:
        raw = lines.encode() if isinstance(lines, str) else lines
        self._call("POST", "/kapacitor/v1/write", raw=raw,
                   query={"db": db, "rp": rp, "precision": precision})
