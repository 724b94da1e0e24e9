"""The runner behind `python -m entrypoint run`: start kapacitord on a rendered config, bring
the tasks up, supervise them (and, in DEV_MODE, follow file changes) until SIGTERM."""

from __future__ import annotations

import dataclasses
import signal
import sys
import time

from entrypoint import alert_handlers, container, tasks
from entrypoint import config as config_json
from entrypoint.devmode import (
    Plan,
    Watcher,
    missing_scripts,
    plan_changes,
    touched_scripts,
    watch_roots,
)
from entrypoint.kapacitord import Kapacitord, write_conf
from entrypoint.log import log
from entrypoint.monitor import Monitor, status_path
from entrypoint.settings import Settings
from entrypoint.socket_udfs import SocketUdfError, SocketUdfs
from entrypoint.supervisor import Supervisor
from kapacitorkit import auth, binaries
from kapacitorkit.api import ApiError, KapacitorApi
from kapacitorkit.ports import PortInUse, ensure_free, free_port

READY_TIMEOUT = 120.0
SETTLE_TIMEOUT = 30.0
TICK = 0.2
DEV_POLL = 1.0


class Shutdown(Exception):
    """SIGTERM or SIGINT arrived: unwind to the clean stop of kapacitord."""


def _on_signal(signum: int, _frame: object) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    raise Shutdown(signal.Signals(signum).name)


class Entrypoint:
    def __init__(self, settings: Settings, config: config_json.Config) -> None:
        self.sockets = SocketUdfs(settings.home, settings.udf_python, settings.socket_dir,
                                  settings.udf_env())
        self.settings = dataclasses.replace(settings, socket_dir=self.sockets.directory)
        self.config = config
        self.credentials = auth.from_env()
        self.api = KapacitorApi(settings.kapacitor_url, credentials=self.credentials)
        self.supervisor = Supervisor(self.api)
        self.monitor = Monitor(self.api, settings.dirs()[1], settings.influxdb_url,
                               status_path(settings.http_bind))
        self.kapacitord: Kapacitord | None = None
        self.refused: set[str] = set()

    @property
    def server(self) -> Kapacitord:
        """The kapacitord boot() started (a DEV_MODE restart replaces it)."""
        if self.kapacitord is None:
            raise RuntimeError("kapacitord is not started: boot() first")
        return self.kapacitord

    # -- start -------------------------------------------------------------------------------
    def boot(self) -> None:
        """Start kapacitord on a freshly rendered config and bring every task up."""
        started = time.monotonic()
        self.sockets.sync(self.config)  # Kapacitor asks socket UDFs for Info at its start
        if self.credentials is not None:
            self._ensure_user(self.credentials)
        self.kapacitord = Kapacitord(self.settings, write_conf(
            self.config, self.settings, auth="off" if self.credentials is None else "on"))
        self.kapacitord.start()
        self.api.wait_ready(READY_TIMEOUT, alive=self.kapacitord.alive)
        log(f"kapacitord ready at {self.settings.kapacitor_url} "
            f"({time.monotonic() - started:.1f}s)")
        self._define_handlers()
        self._start_tasks(list(self.config.tasks), started)

    def _ensure_user(self, credentials: auth.Credentials) -> None:
        """Kapacitor's API needs a user before it can be asked to make one: start it once on
        a private loopback port with its user store but no HTTP authentication, make the
        user an admin with the given password, and stop it."""
        port = free_port()
        private = dataclasses.replace(self.settings, http_bind=f"127.0.0.1:{port}")
        server = Kapacitord(private, write_conf(self.config, private, auth="users",
                                                name="kapacitor-users.conf"), echo=False)
        server.start()
        try:
            api = KapacitorApi(f"http://127.0.0.1:{port}", credentials=None)
            api.wait_ready(READY_TIMEOUT, alive=server.alive)
            done = api.ensure_admin(credentials)
            log(f"authentication on: user {credentials.username} {done}")
        finally:
            server.stop()

    def _define_handlers(self) -> None:
        statuses = alert_handlers.define_all(self.api, self.config.alert_handlers,
                                             self.settings.dirs()[1])
        for name, status in statuses.items():
            log(f"alert handler {name}: {status}")

    def _start_tasks(self, names: list[str], started: float) -> None:
        statuses = tasks.start(self.api, [self.config.tasks[n] for n in names], SETTLE_TIMEOUT)
        for name, status in statuses.items():
            log(f"task {name}: {status}")
            self.supervisor.forget(name)
            if status.startswith(tasks.REFUSED) and tasks.still_enabled(self.api, name):
                log(f"task {name}: the running definition stays, supervised")
                self.refused.discard(name)
            elif status.startswith(tasks.REFUSED):
                self.refused.add(name)
            else:
                self.refused.discard(name)
        running = sum(statuses.get(n) == "executing" for n in names)
        log(f"{running} of {len(names)} task(s) executing, "
            f"{time.monotonic() - started:.1f}s after start")
        self._reconcile()

    def _reconcile(self) -> None:
        """Supervise exactly the enabled tasks of the current config.json that Kapacitor
        accepted: a removed task is let go, a refused one waits until it is defined."""
        self.refused &= set(self.config.tasks)
        self.supervisor.watch(n for n, t in self.config.tasks.items()
                              if t.enabled and n not in self.refused)

    # -- run ---------------------------------------------------------------------------------
    def run(self) -> int:
        """Supervise until kapacitord exits on its own; return its exit status."""
        watcher = self._watcher()
        next_check = next_poll = time.monotonic()
        while self.server.alive():
            now = time.monotonic()
            if watcher is not None and now >= next_poll:
                next_poll = now + DEV_POLL
                changed = watcher.changes()
                if changed:
                    watcher = self._dev_changes(changed, watcher)
            waiting = self._socket_users(self.sockets.down())
            for name, error, when in self.server.failed_tasks():
                if name not in waiting and not self._before_socket_restart(name, when):
                    self.supervisor.failed(name, error, when)
            self.monitor.lines(self.server.lines_of_loss())
            for name in self.sockets.check():
                self._restart_users(name)
            due = self.supervisor.next_due()
            if now >= next_check or (due is not None and now >= due):
                next_check = now + self.settings.check_interval
                self.supervisor.check()
                self.monitor.check(self.supervisor.health)
            time.sleep(TICK)
        status = self.server.stop()
        log(f"kapacitord exited on its own with status {status}")
        return status or 1  # never 0: whatever runs us must start us again

    def _socket_users(self, udfs: set[str]) -> set[str]:
        """The enabled tasks Kapacitor accepted that call one of these (socket) UDFs."""
        return {n for n, t in self.config.tasks.items()
                if t.enabled and n not in self.refused and udfs & set(t.udfs)}

    def _before_socket_restart(self, task: str, when: float | None) -> bool:
        """Kapacitor logged the failure of a connection to a socket UDF server that has been
        restarted since: the restart restarts the task too (once is enough: a second restart
        drops the points it arrives among)."""
        udfs = self.config.tasks[task].udfs if task in self.config.tasks else ()
        return when is not None and when < self.sockets.last_started(udfs)

    def _restart_users(self, udf: str) -> None:
        """A socket UDF listens again: its tasks' connections died with the old server. (Until
        then they are not restarted: Kapacitor 1.8.6 panics stopping a task whose socket UDF
        was missing when it started.)"""
        users = sorted(self._socket_users({udf}))
        for name in users:
            log(f"task {name}: socket UDF {udf} restarted, restarting the task")
            try:
                tasks.restart(self.api, name)
            except OSError as exc:
                log(f"task {name}: restart failed: {exc}")
        for name, status in tasks.wait_settled(self.api, users, SETTLE_TIMEOUT).items():
            self.supervisor.forget(name)
            log(f"task {name}: {status}")

    def _watcher(self) -> Watcher | None:
        if not self.settings.dev_mode:
            return None
        roots = watch_roots(self.config, self.settings.home)
        log("DEV_MODE: watching " + ", ".join(str(r) for r in roots))
        return Watcher(roots)

    # -- dev mode ----------------------------------------------------------------------------
    def _dev_changes(self, changed: set, watcher: Watcher) -> Watcher:
        """A DEV_MODE change that cannot be applied is logged; the service goes on."""
        try:
            return self._on_changes(changed, watcher)
        except (OSError, ValueError) as exc:  # ValueError: ConfigError among others
            log(f"dev: change not applied ({type(exc).__name__}: {exc}); the running tasks "
                "stay as they are")
            return Watcher(watch_roots(self.config, self.settings.home))

    def _on_changes(self, changed: set, watcher: Watcher) -> Watcher:
        home = self.settings.home
        shown = ", ".join(sorted(str(p.relative_to(home)) if p.is_relative_to(home) else str(p)
                                 for p in changed))
        plan = plan_changes(changed, self.config, home,
                            lambda: config_json.load(self.settings.config_json, home))
        handlers_changed = plan.config.alert_handlers != self.config.alert_handlers
        reloaded = bool(plan) and plan.config is not self.config
        if plan:
            log(f"dev: changed {shown}")
            scripts = touched_scripts(changed, home / "udfs", self.config)
            self.sockets.restart(n for n, s in self.sockets.servers.items()
                                 if scripts is None or s.udf.script in scripts)
            for name in sorted(plan.restart & self._socket_users(self.sockets.down())):
                log(f"dev: task {name}: waits for its socket UDF to start again")
                plan.restart.discard(name)
            self._apply(plan)
        else:
            log(f"dev: changed {shown}: no task affected")
            self.config = plan.config
        self._reconcile()
        if handlers_changed and not plan.restart_kapacitord:  # a restart defines them anyway
            self._define_handlers()
        return Watcher(watch_roots(self.config, home)) if reloaded else watcher

    def _apply(self, plan: Plan) -> None:
        old, self.config = self.config, plan.config
        never_defined = plan.restart & self.refused  # Kapacitor refused them: define, not restart
        plan.restart -= never_defined
        plan.define |= never_defined
        started = time.monotonic()
        for name in sorted(plan.delete):
            log(f"dev: task {name}: removed from config.json, deleting it")
            try:
                self.api.delete_task(name)
            except ApiError as exc:
                log(f"dev: task {name}: {exc}")
                continue
            tasks.forget_state(self.settings.dirs()[1], name)
        if plan.restart_kapacitord:
            log(f"dev: restarting kapacitord: {plan.restart_kapacitord}")
            self.server.stop()
            self.boot()
            return
        for name in sorted(plan.define):
            known = name in old.tasks and name not in self.refused  # Kapacitor has it
            log(f"dev: task {name}: {'redefining' if known else 'defining'}")
        for name in sorted(plan.restart):
            missing = missing_scripts(self.config, self.settings.home, name)
            if missing:
                log(f"dev: task {name}: UDF script {', '.join(missing)} is missing: the running "
                    "task stays as it is until the file is back")
                plan.restart.discard(name)
            elif self.config.tasks[name].enabled:
                log(f"dev: task {name}: UDF code changed, restarting")
                tasks.restart(self.api, name)
        if plan.define:
            self._start_tasks(sorted(plan.define), started)
        for name, status in tasks.wait_settled(self.api, sorted(plan.restart),
                                               SETTLE_TIMEOUT).items():
            self.supervisor.forget(name)
            log(f"task {name}: {status}")


def run(settings: Settings) -> int:
    """The image's entrypoint: start everything, supervise, stop cleanly on SIGTERM."""
    try:
        config = config_json.load(settings.config_json, settings.home)
    except config_json.ConfigError as exc:
        print(f"entrypoint: invalid configuration:\n{exc}", file=sys.stderr, flush=True)
        return 2
    problem = startup_problem(settings)
    if problem:
        print(f"entrypoint: {problem}", file=sys.stderr, flush=True)
        return 2
    settings = dataclasses.replace(settings, kapacitord=settings.kapacitord
                                   or binaries.find_kapacitord() or "")
    log(f"{settings.config_json}: {len(config.udfs)} UDF(s), {len(config.tasks)} task(s)")
    for note in config.notes:
        log(f"{settings.config_json}: warning: {note}")
    problem = container.unwritable(settings.dirs())
    if problem:
        print(f"entrypoint: {problem}", file=sys.stderr, flush=True)
        return 2
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _on_signal)
    try:
        entrypoint = Entrypoint(settings, config)
    except auth.AuthError as exc:
        print(f"entrypoint: invalid credentials: {exc}", file=sys.stderr, flush=True)
        return 2
    except SocketUdfError as exc:
        print(f"entrypoint: {exc}", file=sys.stderr, flush=True)
        return 2
    try:
        container.wait_for_influxdb(settings.influxdb_url, settings.influxdb_wait)
        entrypoint.boot()
        return entrypoint.run()
    except Shutdown as why:
        log(f"{why}: stopping kapacitord")
    except container.Unreachable as exc:
        log(f"giving up: {exc}")
        return 1
    except (ApiError, OSError, SocketUdfError) as exc:  # OSError: kapacitord stopped answering
        log(f"giving up: {exc}")
        return _stop(entrypoint) or 1
    finally:
        entrypoint.sockets.stop_all()
    status = _stop(entrypoint)
    log(f"kapacitord stopped with status {status}")
    return status


def startup_problem(settings: Settings) -> str:
    """Why `run` cannot start, found before anything is written or started ('' if none)."""
    if settings.data_dir is None:
        return ("no data directory: pass --data-dir DIR or set KAPACITOR_DATA_DIR "
                "(the image sets /var/lib/kapacitor)")
    if not (settings.kapacitord or binaries.find_kapacitord()):
        return binaries.NOT_FOUND
    try:
        ensure_free(settings.http_bind, "kapacitord's HTTP API (--http-bind, KAPACITOR_HTTP_BIND)")
    except PortInUse as exc:
        return str(exc)
    return ""


def _stop(entrypoint: Entrypoint) -> int:
    return entrypoint.kapacitord.stop() if entrypoint.kapacitord is not None else 0

