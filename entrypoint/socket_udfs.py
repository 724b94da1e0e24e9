"""Socket UDFs: servers the entrypoint starts before kapacitord and keeps listening.

Kapacitor never starts a socket UDF: it connects to the socket at its own start (Info) and
once per task node, so the server must listen first and stay up. Each config.json UDF with
`"socket": true` runs as `python udfs/SCRIPT --mode MODE --socket DIR/NAME.sock`; one that
dies is restarted with the task supervisor's backoff, and the runner then restarts the tasks
that use it (their connections died with it). The directory is private (0700, ours), so only
the container's user reaches the sockets.
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from entrypoint.config import Config, Udf
from entrypoint.log import log
from entrypoint.supervisor import HEALTHY_RESET, backoff

LISTEN_TIMEOUT = 30.0
STOP_GRACE = 10.0
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux; keep a margin
TAIL_LINES = 20


class SocketUdfError(RuntimeError):
    """A socket UDF could not start, or its directory is unusable; the message names it."""


def private_dir(configured: Path | None) -> tuple[Path, bool]:
    """The socket directory, 0700 and owned by us; and whether we created it (to remove)."""
    if configured is None:
        return Path(tempfile.mkdtemp(prefix="udf-sockets-")), True
    try:
        configured.mkdir(mode=0o700, parents=True, exist_ok=True)
        owner = configured.stat().st_uid
        if owner != os.getuid():
            raise SocketUdfError(f"KAPACITOR_SOCKET_DIR {configured} belongs to uid {owner}, "
                                 f"not to uid {os.getuid()} that runs the UDFs")
        configured.chmod(0o700)
    except OSError as exc:
        raise SocketUdfError(f"KAPACITOR_SOCKET_DIR {configured}: {exc.strerror}") from None
    return configured, False


def socket_path(directory: Path, name: str) -> Path:
    return directory / f"{name}.sock"


@dataclass
class Server:
    """One socket UDF's process and its restart record."""

    udf: Udf
    path: Path
    proc: subprocess.Popen | None = None
    reader: threading.Thread | None = None  # passes its output on, keeps the last lines
    tail: collections.deque = field(default_factory=lambda: collections.deque(maxlen=TAIL_LINES))
    failures: int = 0
    restart_at: float | None = None
    healthy_since: float | None = None
    started_wall: float = 0.0  # epoch seconds of the last start, to date Kapacitor's errors

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def status(self) -> int | None:
        """The exit status once the process ended (a negative one: killed by that signal)."""
        return self.proc.poll() if self.proc is not None else None

    def listening(self) -> bool:
        try:
            return stat.S_ISSOCK(self.path.stat().st_mode)
        except OSError:
            return False


class SocketUdfs:
    """The socket UDF servers of the running config.json."""

    def __init__(self, home: Path, python: str, configured_dir: Path | None = None,
                 env: Mapping[str, str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.home, self.python, self.clock = home, python, clock
        self.env = dict(env or {})  # Settings.udf_env(): what process UDFs get too
        self.directory, self._owned = private_dir(configured_dir)
        self.servers: dict[str, Server] = {}

    def path(self, name: str) -> Path:
        path = socket_path(self.directory, name)
        if len(str(path)) > MAX_SOCKET_PATH:
            raise SocketUdfError(f'UDF "{name}": socket path {path} is longer than '
                                 f"{MAX_SOCKET_PATH} characters; set a shorter "
                                 "KAPACITOR_SOCKET_DIR")
        return path

    # -- start and stop ----------------------------------------------------------------------
    def sync(self, config: Config) -> None:
        """Run exactly the socket UDFs `config` declares, each listening, before kapacitord
        starts: changed or removed ones stop, new (or dead) ones start. Raises SocketUdfError."""
        wanted = {u.name: u for u in config.udfs.values() if u.socket}
        for name in [n for n, s in self.servers.items() if wanted.get(n) != s.udf]:
            self._stop(self.servers.pop(name))
        for name, udf in wanted.items():
            server = self.servers.setdefault(name, Server(udf, self.path(name)))
            if not server.alive():
                self._start(server)
        for server in self.servers.values():
            self._wait_listening(server)

    def restart(self, names: Iterable[str]) -> None:
        """Stop and start these servers now (their code changed) and wait until they listen;
        one that does not is logged and left to check()'s restarts (a file being edited)."""
        for name in names:
            server = self.servers[name]
            log(f"socket UDF {name}: restarting")
            self._stop(server)
            self._start(server)
            try:
                self._wait_listening(server)
            except SocketUdfError as exc:
                log(str(exc))

    def stop_all(self) -> None:
        for server in self.servers.values():
            self._stop(server)
        self.servers.clear()
        if self._owned:
            shutil.rmtree(self.directory, ignore_errors=True)

    def _command(self, udf: Udf, path: Path) -> list[str]:
        script = self.home / "udfs" / udf.script
        return [self.python, "-u", str(script), "--mode", udf.mode, "--socket", str(path),
                *udf.args]

    def _start(self, server: Server) -> None:
        env = {**os.environ, **self.env, **server.udf.env}
        server.tail.clear()
        # Own session: a terminal's Ctrl-C reaches the entrypoint, which stops us in order.
        proc = subprocess.Popen(
            self._command(server.udf, server.path), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        server.proc, server.restart_at = proc, None
        server.reader = threading.Thread(target=self._pass_output, args=(server, proc.stdout),
                                         daemon=True, name=f"socket-udf-{server.udf.name}")
        server.reader.start()
        server.healthy_since, server.started_wall = self.clock(), time.time()
        log(f"socket UDF {server.udf.name}: started (pid {proc.pid}) on {server.path}")

    @staticmethod
    def _pass_output(server: Server, stream: IO[bytes]) -> None:
        out = sys.stdout
        for raw in stream:
            line = raw.decode(errors="replace").rstrip()
            server.tail.append(line)
            out.write(f"udf {server.udf.name}: {line}\n")
            out.flush()

    def _wait_listening(self, server: Server) -> None:
        deadline = self.clock() + LISTEN_TIMEOUT
        while not server.listening():
            if not server.alive() or self.clock() > deadline:
                if server.reader is not None:  # its last words, e.g. a traceback
                    server.reader.join(1.0)
                why = (f"exited with status {server.status()}" if not server.alive()
                       else f"did not listen within {LISTEN_TIMEOUT:g}s")
                tail = "\n".join(server.tail)
                raise SocketUdfError(f'socket UDF "{server.udf.name}" (udfs/'
                                     f"{server.udf.script}) {why}" + (f":\n{tail}" if tail else ""))
            time.sleep(0.05)

    def _stop(self, server: Server) -> None:
        proc = server.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                log(f"socket UDF {server.udf.name}: did not stop within {STOP_GRACE:g}s, killing")
                proc.kill()
                proc.wait()
        server.path.unlink(missing_ok=True)

    # -- supervision -------------------------------------------------------------------------
    def down(self) -> set[str]:
        """The socket UDFs whose server is not running now."""
        return {name for name, server in self.servers.items() if not server.alive()}

    def last_started(self, names: Iterable[str]) -> float:
        """When the latest of these servers started (epoch seconds; 0 if none is a socket UDF)."""
        return max((self.servers[n].started_wall for n in names if n in self.servers), default=0.0)

    def check(self) -> list[str]:
        """Restart servers that died (backoff as for tasks); the names now listening again."""
        back = []
        now = self.clock()
        for name, server in self.servers.items():
            if server.alive():
                if server.failures and now - (server.healthy_since or now) >= HEALTHY_RESET:
                    server.failures = 0
                continue
            if server.restart_at is None:
                server.failures += 1
                server.restart_at = now + backoff(server.failures)
                log(f"socket UDF {name}: exited with status {server.status()}; "
                    f"restarting in {backoff(server.failures):g}s "
                    f"(restart #{server.failures})")
            if now >= server.restart_at:
                server.restart_at = None
                self._start(server)
                try:
                    self._wait_listening(server)
                except SocketUdfError as exc:
                    log(str(exc))
                    continue
                back.append(name)
        return back
