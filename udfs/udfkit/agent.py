"""The agent: speaks Kapacitor's UDF protocol for one handler over a pair of file descriptors.

Two threads. The reader reads big chunks, splits frames and answers keepalives
itself, so a handler busy with a slow inference never gets the task killed.
The worker (the caller's thread) parses requests, runs the handler on every
point already waiting (the vectorised path), and flushes output whenever the
input is drained and after every management response.

Keepalives still prove progress: the worker notes when it enters a handler, and
once one call has run longer than the UDF's timeout (twice Kapacitor's keepalive
interval) the reader answers the next keepalive with an ErrorResponse naming the
handler and ends the process, so Kapacitor fails the task and it can restart.
Whatever goes wrong in the reader ends the process with an ErrorResponse too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from udfkit import framing, gc_settings, snapshot, statefile, udf_pb2
from udfkit.framing import KEEPALIVE, POINT
from udfkit.handler import Batch, Handler, TaskContext
from udfkit.options import OptionError, parse_options
from udfkit.points import Annotated, Encoded, PointError, as_fields

Request, Response = udf_pb2.Request, udf_pb2.Response


@dataclass(frozen=True, slots=True)
class Frames:
    """What the reader split off one read: when it was read, the whole frames, and how many
    of them are not points (0: the common all-points chunk, passed on without a look)."""

    read_ns: int
    frames: list[bytes]
    others: int


@dataclass(frozen=True, slots=True)
class Fatal:
    """The input cannot be read on: why, for the ErrorResponse that ends the task."""

    reason: str


@dataclass(frozen=True, slots=True)
class End:
    """No more input: handle what was read, save the state, exit."""

    why: str


_EOF = End("end of input")
_STOP = End("SIGTERM")  # from the signal handler
Item = Frames | Fatal | End
"""What the reader thread queues for the worker."""


@dataclass(frozen=True, slots=True)
class Call:
    """The handler call the worker is inside, for the reader's hang check."""

    started: float  # time.monotonic()
    name: str  # "handler.method()"


@dataclass(frozen=True, slots=True)
class Look:
    """The reader's last look at a call: the points finished by then, and since when the
    call has made no progress."""

    call: Call
    progress: int
    since: float
_READ_SIZE = 1 << 17
QUEUED_READS = 64
"""Reads (of at most _READ_SIZE, about 1,500 points) the reader keeps ahead of the worker.
Past them it stops reading: the pipe fills and Kapacitor waits, so input faster than the
handler costs the UDF at most about 8 MiB, not a backlog without bound."""
_FULL_LOOK = 0.5
"""While the worker is behind, how often (s) the reader looks whether it is stuck."""
_SMALL_READ = 16384
_FLUSH_FRAMES = 20_000
_LOG_FIRST_ERRORS = 20
_LOG_EVERY_ERRORS = 1000
_MAX_READ = 16 << 20
_MIN_KEEPALIVE_INTERVAL = 0.01
"""Keepalives closer than this (s) came in a burst and say nothing about Kapacitor's timeout."""


class ProtocolError(Exception):
    """Kapacitor sent something this agent cannot take: the task must fail."""


_JOIN_LIMIT = 1 << 20
"""A response this big is written as it is rather than joined with others (a copy)."""


class Output:
    """Framed responses to one fd; the worker batches, the reader sends keepalives at once."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._lock = threading.Lock()
        self.pending: list[bytes] = []

    def add(self, data: bytes) -> None:
        self.pending.append(data)

    def extend(self, frames: list[bytes]) -> None:
        self.pending.extend(frames)

    def flush(self) -> None:
        if not self.pending:
            return
        if len(self.pending) == 2 and len(self.pending[1]) > _JOIN_LIMIT:  # a big snapshot
            prefix, data = self.pending
            self.pending.clear()
            with self._lock:
                framing.write_all(self.fd, prefix)
                framing.write_all(self.fd, data)
            return
        data = b"".join(self.pending)
        self.pending.clear()
        self.send_now(data)

    def send_now(self, data: bytes, timeout: float = -1) -> None:
        if not self._lock.acquire(timeout=timeout):
            return
        try:
            framing.write_all(self.fd, data)
        finally:
            self._lock.release()


class Agent:
    """Runs one handler for one Kapacitor node (one process, or one socket connection)."""

    def __init__(
        self,
        handler_factory: Callable[[], Handler],
        infd: int,
        outfd: int,
        *,
        max_batch: int = 16384,
        max_delay: float = 0.0005,
        profiling: bool = False,
        tune_gc: bool = True,
        log_stream: Any = None,
        on_hang: Callable[[], None] | None = None,
        state_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self._factory = handler_factory
        self.handler = handler_factory()
        self._infd = infd
        self._out = Output(outfd)
        self._queue: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self._room = threading.Semaphore(QUEUED_READS)  # reads the reader may still queue
        self._stopped = False  # the worker has returned: the reader queues nothing more
        self._max_batch = max_batch
        self._max_delay = max_delay
        self._profiling = profiling
        self._tune_gc = tune_gc
        self._log_stream = log_stream or sys.stderr
        self._on_hang = on_hang or (lambda: os._exit(2))
        self.reader: threading.Thread | None = None
        self._context = TaskContext()
        self._init_args: tuple[dict[str, Any], TaskContext] | None = None
        self._batch: Batch | None = None
        self._vectorised = type(self.handler).is_vectorised()
        self._initialised = False
        self._busy: Call | None = None
        self._progress = 0  # points a run of point() calls has finished
        self._watch: Look | None = None
        self._last_keepalive = 0.0
        self.timeout: float | None = None  # learnt from Kapacitor's keepalive interval
        self.points_in = self.points_out = self.point_errors = 0
        self._state_dir = Path(state_dir) if state_dir else None
        self._state_path: Path | None = None  # set at Init when state is kept on the volume
        self._state_digest = b""
        self._file_state: bytes | None = None  # the payload the handler was loaded from

    # -- logging -------------------------------------------------------------
    def log(self, level: str, message: str) -> None:
        """One short stderr line: Kapacitor turns each line into a log entry."""
        text = " ".join(message.split())[:1000]
        self._log_stream.write(f"{level} {self.handler.name} {self._context}: {text}\n")
        self._log_stream.flush()

    # -- main loop -----------------------------------------------------------
    def run(self) -> int:
        """Serve until the input closes (exit status 0) or a protocol error (1)."""
        gc_settings.GcClock.install()
        for fd in (self._infd, self._out.fd):
            _widen_pipe(fd)
        self.reader = threading.Thread(target=self._read_loop, name="udf-reader", daemon=True)
        self.reader.start()
        try:
            while True:
                items = self._take()
                done = self._handle(items)
                if done or self._queue.empty() or len(self._out.pending) > _FLUSH_FRAMES:
                    self._out.flush()
                if done:
                    self._save_state("stop")
                    return 0
        except ProtocolError as exc:
            return self._fail(str(exc))
        except Exception as exc:  # a bug must still end the task with a clear error
            return self._fail(f"internal error: {type(exc).__name__}: {exc}")
        finally:
            self._stopped = True
            self.log("INFO", f"stopped: {self.points_in} points in, {self.points_out} out, "
                             f"{self.point_errors} failed; {gc_settings.GcClock.summary()}")

    def _fail(self, message: str) -> int:
        self.log("ERROR", message)
        try:
            self._out.add(framing.frame(Response(error=udf_pb2.ErrorResponse(error=message))
                                        .SerializeToString()))
            self._out.flush()
        except OSError:
            pass
        return 1

    def _take(self) -> list[Item]:
        """Block for one chunk, then take every chunk already waiting (bounded by max_batch)."""
        items = [self._queue.get()]
        count = len(items[0].frames) if isinstance(items[0], Frames) else 0
        while count < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            items.append(item)
            if not isinstance(item, Frames):
                break
            count += len(item.frames)
        for item in items:
            if isinstance(item, Frames):
                self._room.release()
        return items

    def _handle(self, items: list[Item]) -> bool:
        """Dispatch drained chunks; True when the input has ended."""
        run: list[bytes] = []
        entry_ns = 0
        for item in items:
            if isinstance(item, End):
                self._points(run, entry_ns)
                return True
            if isinstance(item, Fatal):
                self._points(run, entry_ns)
                raise ProtocolError(item.reason)
            frames: list[bytes | None] = list(item.frames) if item.others else []
            entry_ns = entry_ns or item.read_ns
            if not item.others:
                run.extend(item.frames)
                continue
            item.frames.clear()  # the list above holds them: a big frame is freed once used
            for i, message in enumerate(frames):
                assert message is not None
                if framing.frame_kind(message) == POINT:
                    run.append(message)
                    continue
                self._points(run, entry_ns)
                run = []
                request = _parse_request(message)
                frames[i] = message = None  # a big frame (a restore) is freed before it is used
                self._management(request)
        self._points(run, entry_ns)
        return False

    # -- reader thread -------------------------------------------------------
    def _read_loop(self) -> None:
        """Read, split and queue frames; any failure here is queued as a fatal error."""
        put = self._queue.put
        try:
            self._read_frames(put)
        except framing.FramingError as exc:
            put(Fatal(f"malformed input: {exc}"))
        except ProtocolError as exc:
            put(Fatal(str(exc)))
        except OSError as exc:
            put(Fatal(f"read failed: {exc}"))
        except Exception as exc:  # e.g. a broken keepalive: never let the reader die silently
            put(Fatal(f"malformed input: {type(exc).__name__}: {exc}"))
        put(_EOF)

    def _read_frames(self, put: Callable[[Item], None]) -> None:
        decoder = framing.FrameDecoder()
        while True:
            chunk = os.read(self._infd, min(max(_READ_SIZE, decoder.wanted()), _MAX_READ))
            if not chunk:
                if decoder.pending:
                    put(Fatal(f"truncated input: {decoder.pending} bytes of an incomplete "
                              "message at end of stream"))
                return
            frames = decoder.feed(chunk)
            others = decoder.others
            if others:
                kept = [f for f in frames if not self._keepalive(f)]
                others -= len(frames) - len(kept)
                frames = kept
            if frames:
                if not self._wait_for_room():
                    return
                put(Frames(time.time_ns(), frames, others))
            if len(chunk) < _SMALL_READ and self._max_delay > 0:
                # Kapacitor writes each point with two unbuffered writes. After a
                # small read, let points gather: fewer wakeups on both sides, and
                # the points already read are being handled meanwhile.
                time.sleep(self._max_delay)

    def _wait_for_room(self) -> bool:
        """Wait while QUEUED_READS reads are queued; False once the worker has stopped. A
        worker stuck past the timeout is found here too, as no keepalive is read meanwhile."""
        while not self._room.acquire(timeout=_FULL_LOOK):
            if self._stopped:
                return False
            hung = self._stuck(time.monotonic())
            if hung:
                self._abort(hung)  # does not return in process mode
                raise ProtocolError(hung)
        return True

    def _keepalive(self, message: bytes) -> bool:
        """Answer a keepalive from the reader thread; False for any other message."""
        if framing.frame_kind(message) != KEEPALIVE:
            return False
        try:
            stamp = Request.FromString(message).keepalive.time
        except Exception as exc:  # upb raises DecodeError subclasses
            raise ProtocolError(f"malformed keepalive request: {exc}") from exc
        hung = self._hung_handler()
        if hung:
            self._abort(hung)  # does not return in process mode
            raise ProtocolError(hung)  # socket mode: this connection ends here
        reply = Response(keepalive=udf_pb2.KeepaliveResponse(time=stamp))
        self._out.send_now(framing.frame(reply.SerializeToString()))
        return True

    def _hung_handler(self) -> str | None:
        """Learn the timeout from the keepalive interval; describe a handler stuck past it."""
        now = time.monotonic()
        if self._last_keepalive and now - self._last_keepalive >= _MIN_KEEPALIVE_INTERVAL:
            self.timeout = 2 * (now - self._last_keepalive)
        self._last_keepalive = now
        return self._stuck(now)

    def _stuck(self, now: float) -> str | None:
        """What the worker is stuck in: one call (or one run of point() calls) with no point
        finished since the last look, for longer than the timeout (None: it is not, or no
        timeout is known yet)."""
        busy, progress, watch = self._busy, self._progress, self._watch
        if busy is None:
            self._watch = None
            return None
        if watch is None or watch.call is not busy:
            since = busy.started  # a call we have not seen yet
        elif watch.progress != progress:
            since = now  # it finished points since the last look
        else:
            since = watch.since
        self._watch = Look(busy, progress, since)
        if self.timeout is None or now - since <= self.timeout:
            return None
        return (f"handler {busy.name} has been running for {now - since:.1f} s without "
                f"progress, longer than the UDF timeout ({self.timeout:.1f} s): taken as "
                "hung, the task must restart")

    def _abort(self, message: str) -> None:
        """From the reader thread, while the worker is stuck: ErrorResponse, then on_hang
        (exit the process; a socket server closes just this connection)."""
        self.log("ERROR", message)
        error = Response(error=udf_pb2.ErrorResponse(error=message)).SerializeToString()
        try:
            self._out.send_now(framing.frame(error), timeout=1.0)
        finally:
            self._on_hang()

    # -- points --------------------------------------------------------------
    def _points(self, run: list[bytes], entry_ns: int) -> None:
        step = self._max_batch
        for start in range(0, len(run), step):
            self._point_run(run[start:start + step] if len(run) > step else run, entry_ns)

    def _point_run(self, run: list[bytes], entry_ns: int) -> None:
        stream = self._batch is None and self.handler.wants == udf_pb2.STREAM
        column = self.handler.column if stream and self._vectorised else None
        try:
            if column is None:
                points: Sequence[udf_pb2.Point] = [Request.FromString(m).point for m in run]
            else:
                from udfkit.columns import Columns  # numpy: not at import, Info must be quick

                points = Columns(run, column)
        except Exception as exc:  # upb raises DecodeError subclasses
            raise ProtocolError(f"malformed point message: {exc}") from exc
        self.points_in += len(points)
        if not self._initialised:
            raise ProtocolError(f"{len(points)} point(s) before a successful Init: "
                                f"{self.handler.name} cannot handle them")
        if self._batch is not None:
            self._batch.points.extend(points)
        elif self.handler.wants == udf_pb2.BATCH:
            raise ProtocolError(f"point outside a batch (no BeginBatch) sent to the batch UDF "
                                f"{self.handler.name}")
        else:
            self._stream(points, run, entry_ns)

    @contextlib.contextmanager
    def _inside(self, method: str) -> Iterator[None]:
        """Mark the worker as inside a handler call, for the reader's hang check."""
        self._busy = Call(time.monotonic(), f"{self.handler.name}.{method}()")
        try:
            yield
        finally:
            self._busy = None

    def _stream(self, points: Sequence[udf_pb2.Point], run: list[bytes], entry_ns: int) -> None:
        handler = self.handler
        if self._vectorised:
            try:
                with self._inside("points"):
                    scored = handler.points(points)
            except Exception as exc:  # one bad call must not end the task
                self._failed_call(points, exc, emit=True)
                return
            passed = self._rejections()
            if passed:
                items = scored.items() if isinstance(scored, Annotated) else scored
                scored = _in_input_order(points, items, passed)
            self._emit(scored, entry_ns, (points, run))
            return
        out: list[udf_pb2.Point] = []
        with self._inside("point"):  # one mark per run (at most max_batch points)
            for point in points:
                self._progress += 1
                try:
                    result = handler.point(point)
                except Exception as exc:  # one bad point must not end the task
                    self._point_errors([point], exc)
                    continue
                if result is None:
                    continue
                if isinstance(result, list):
                    out.extend(result)
                else:
                    out.append(result)
        self._emit(out, entry_ns)

    def _rejections(self) -> list[udf_pb2.Point]:
        """Account for points the handler rejected (reject()); return those to pass on."""
        passed = []
        for point, reason in self.handler.take_rejected():
            self._point_errors([point], PointError(reason), emit=False)
            if self.handler.on_error == "pass":
                passed.append(point)
        return passed

    def _failed_call(self, points: Sequence[udf_pb2.Point], exc: Exception, *, emit: bool) -> None:
        """points()/batch() raised: points it had rejected keep their own reason, the rest
        get the exception."""
        rejected = self.handler.take_rejected()
        for point, reason in rejected:
            self._point_errors([point], PointError(reason), emit=emit)
        seen = {id(point) for point, _ in rejected}
        self._point_errors([p for p in points if id(p) not in seen], exc, emit=emit)

    def _point_errors(self, points: list[udf_pb2.Point], exc: Exception, *,
                      emit: bool = True) -> None:
        """Count and log failed points. With on_error "pass" they get the error field and,
        if `emit`, are sent on here; otherwise they are dropped."""
        before = self.point_errors
        self.point_errors += len(points)
        passing = self.handler.on_error == "pass"
        if before < _LOG_FIRST_ERRORS or before // _LOG_EVERY_ERRORS != \
                self.point_errors // _LOG_EVERY_ERRORS:
            action = "passed on" if passing else "dropped"
            self.log("WARN", f"{len(points)} point(s) {action} ({self.point_errors} so far): "
                             f"{type(exc).__name__}: {exc}")
        if passing:
            field = self.handler.error_field
            for point in points:
                point.fieldsString[field] = str(exc)[:200]
            if emit:
                self._emit(points, 0)

    def _emit(self, points: Sequence[udf_pb2.Point | Encoded] | Annotated, entry_ns: int,
              inputs: Inputs | None = None) -> None:
        """Frame output items; an Encoded input point is sent as the bytes it came in
        (`inputs`: the call's points and their messages) with its fields after them."""
        if isinstance(points, Annotated):
            if not self._profiling:
                self._emit_annotated(points, inputs)
                return
            points = points.items()
        if not points:
            return
        if self._profiling:
            points = _stamp(points, entry_ns)
        prefixes = framing.POINT_PREFIXES
        limit = len(prefixes)
        frames: list[bytes] = []
        append, extend = frames.append, frames.extend
        sent: dict[int, bytes] | None = None
        for item in points:
            if isinstance(item, Encoded):
                if sent is None:
                    sent = _messages_by_point(inputs)
                extend(_framed(_message_of(item.point, sent), item.fields))
                continue
            data = item.SerializeToString()
            n = len(data)
            append(prefixes[n] + data if n < limit else framing.frame_point_response(data))
        self._out.extend(frames)
        self.points_out += len(points)

    def _emit_annotated(self, out: Annotated, inputs: Inputs | None) -> None:
        """Annotated output: each point's message and its fields, with no object per point
        between the few that carry extra fields or new points after them."""
        if inputs is not None and out.points is inputs[0]:
            messages = inputs[1]
        else:
            sent = _messages_by_point(inputs)
            messages = [_message_of(p, sent) for p in out.points]
        raw, size, lengths = out.fields, out.size, framing.LENGTHS
        limit = len(lengths)
        frames: list[bytes] = []
        extend = frames.extend
        start = 0
        for stop in [*sorted(out.extra.keys() | out.after.keys()), len(messages)]:
            for message, i in zip(messages[start:stop], range(start * size, stop * size, size),
                                  strict=True):
                n = len(message) + size  # _framed, inlined: this loop runs per point
                extend((lengths[n] if n < limit else framing.encode_varint(n), message,
                        raw[i:i + size]))
            if stop == len(messages):
                break
            extend(_framed(messages[stop], out.fields_of(stop)))
            after = out.after.get(stop, ())
            extend(framing.frame_point_response(p.SerializeToString()) for p in after)
            self.points_out += len(after)
            start = stop + 1
        self._out.extend(frames)
        self.points_out += len(messages)

    # -- management ----------------------------------------------------------
    def _management(self, request: udf_pb2.Request) -> None:
        kind = request.WhichOneof("message")
        handle = {
            "info": self._info, "init": self._init, "snapshot": self._snapshot,
            "restore": self._restore, "begin": self._begin, "end": self._end,
        }.get(kind or "")  # keepalives never get here: the reader thread answers them
        if handle is None:
            raise ProtocolError(f"unexpected request {kind or 'with no message'}")
        handle(request)
        if kind not in ("begin", "end"):
            self._out.flush()

    def _respond(self, **message: Any) -> None:
        self._out.add(framing.frame(Response(**message).SerializeToString()))

    def _info(self, _request: udf_pb2.Request) -> None:
        handler = type(self.handler)
        info = udf_pb2.InfoResponse(wants=handler.wants, provides=handler.provides)
        for opt in handler.options:
            info.options[opt.name].valueTypes.append(opt.type)
        self._respond(info=info)

    def _init(self, request: udf_pb2.Request) -> None:
        init = request.init
        self._context = TaskContext(init.taskID, init.nodeID)
        try:
            options = parse_options(type(self.handler).options, init.options)
            with self._inside("init"):
                self.handler.init(options, self._context)
        except OptionError as exc:
            self._init_failed(f"invalid options: {exc}")
            return
        except Exception as exc:  # e.g. a model that fails verification
            self._init_failed(f"{type(exc).__name__}: {exc}")
            return
        self._init_args = (options, self._context)
        self._initialised = True
        self._open_state_file(init)
        if self._tune_gc:
            gc_settings.settle()
        gc_settings.GcClock.reset()
        self._respond(init=udf_pb2.InitResponse(success=True))

    def _init_failed(self, message: str) -> None:
        self.log("ERROR", f"init failed: {message}")
        self._respond(init=udf_pb2.InitResponse(success=False, error=message))

    def _snapshot(self, _request: udf_pb2.Request) -> None:
        data = self._snapshot_bytes()
        if len(data) > _JOIN_LIMIT:
            self._out.flush()
            self._out.extend([framing.snapshot_response_prefix(len(data)), data])
        else:
            self._respond(snapshot=udf_pb2.SnapshotResponse(snapshot=data))
        self._save_state("snapshot", data)

    def _snapshot_bytes(self) -> bytes:
        """What a SnapshotRequest is answered with (b"": a handler without state)."""
        handler = self.handler
        if handler.snapshot_version <= 0:
            return b""
        with self._inside("state"):
            state = handler.state()
        return snapshot.encode(handler.name, handler.snapshot_version, state)

    def _apply_snapshot(self, data: bytes) -> None:
        """Load bytes _snapshot_bytes() made into the handler; raises if they do not fit."""
        handler = self.handler
        state = snapshot.decode(data, handler.name, handler.snapshot_version,
                               handler.snapshot_oldest)
        with self._inside("restore"):
            handler.restore(state)

    def _restore(self, request: udf_pb2.Request) -> None:
        """Load a snapshot; an unreadable one is logged and the handler starts fresh.

        A failed restore() may have left the handler half-loaded, so the fallback builds
        a new one with the same options; should that Init fail now, the current handler
        goes on. Nothing in the fallback can fail the task.
        """
        data = request.restore.snapshot if self.handler.snapshot_version > 0 else b""
        request.Clear()
        if data and self._file_state is not None:
            same = "the same state" if data == self._file_state else "an older state"
            self.log("INFO", f"Kapacitor's {len(data)}-byte snapshot is {same}: kept the "
                             f"state loaded from {self._state_path}")
        elif data:
            try:
                self._apply_snapshot(data)
                self.log("INFO", f"state restored from a {len(data)}-byte snapshot")
            except Exception as exc:  # never fail the task over old or corrupt state
                self.log("WARN", f"snapshot ignored, starting fresh: {type(exc).__name__}: {exc}")
                self._fresh_handler()
        self._respond(restore=udf_pb2.RestoreResponse(success=True))

    def _fresh_handler(self) -> None:
        if self._init_args is None:
            return
        fresh = self._factory()
        try:
            with self._inside("init"):
                fresh.init(*self._init_args)
        except Exception as exc:  # keep the handler Init gave us rather than fail the task
            self.log("WARN", f"a fresh handler failed Init ({type(exc).__name__}: {exc}); "
                             "going on with the current one")
            return
        self.handler = fresh

    # -- state on the data volume -------------------------------------------------
    def stop_on_signals(self) -> None:
        """Process mode: SIGTERM (or SIGINT) ends the run like a closed stdin, state saved.
        SimpleQueue.put may be called from a signal handler."""
        def stop(_signum: int, _frame: object) -> None:
            self._queue.put(_STOP)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, stop)

    def _open_state_file(self, init: udf_pb2.InitRequest) -> None:
        """Key the state file by task and node; load it if one was saved for them."""
        if self._state_dir is None or self.handler.snapshot_version <= 0:
            return
        self._state_path = statefile.path_for(self._state_dir, init.taskID, init.nodeID)
        self._state_digest = statefile.options_digest(
            o.SerializeToString(deterministic=True) for o in init.options)
        if not self._state_path.exists():
            return
        try:
            data, saved_ns = statefile.load(self._state_path, self._state_digest)
            self._apply_snapshot(data)
        except Exception as exc:  # never fail the task over a bad file
            self.log("WARN", f"state file {self._state_path} ignored: "
                             f"{type(exc).__name__}: {exc}")
            self._fresh_handler()
            return
        self._file_state = data
        age = max(0.0, (time.time_ns() - saved_ns) / 1e9)
        self.log("INFO", f"state loaded from {self._state_path} ({len(data)} bytes, "
                         f"saved {age:.0f} s ago)")

    def _save_state(self, when: str, data: bytes | None = None) -> None:
        """Write the state file (at a snapshot, or at stop). A failed write at a snapshot
        removes the file, which must never be older than Kapacitor's snapshot."""
        path = self._state_path
        if path is None or not self._initialised:
            return
        try:
            if data is None:
                data = self._snapshot_bytes()
            statefile.save(path, data, self._state_digest)
        except Exception as exc:  # a full disk must not fail the task
            self.log("ERROR", f"state not saved at {when} to {path}: "
                              f"{type(exc).__name__}: {exc}")
            if when == "snapshot":
                with contextlib.suppress(OSError):
                    path.unlink(missing_ok=True)
            return
        if when == "stop":
            self.log("INFO", f"state saved to {path} ({len(data)} bytes)")

    # -- batches -------------------------------------------------------------
    def _begin(self, request: udf_pb2.Request) -> None:
        name = self.handler.name
        if self.handler.wants != udf_pb2.BATCH:
            raise ProtocolError(f"BeginBatch sent to the stream UDF {name}: it takes points only")
        if not self._initialised:
            raise ProtocolError(f"BeginBatch before a successful Init: {name} cannot handle it")
        if self._batch is not None:
            raise ProtocolError(f"BeginBatch inside batch {self._batch.begin.name!r}, "
                                "which never ended")
        begin = udf_pb2.BeginBatch()
        begin.CopyFrom(request.begin)
        self._batch = Batch(begin)

    def _end(self, request: udf_pb2.Request) -> None:
        batch, self._batch = self._batch, None
        if batch is None:
            raise ProtocolError(f"EndBatch without a BeginBatch sent to {self.handler.name}")
        batch.end = udf_pb2.EndBatch()
        batch.end.CopyFrom(request.end)
        try:
            with self._inside("batch"):
                result = self.handler.batch(batch)
        except Exception as exc:  # one bad batch must not end the task
            self._failed_call(batch.points, exc, emit=False)
            if self.handler.on_error == "pass":
                self._emit_batch(batch)
            return
        passed = self._rejections()
        if isinstance(result, Batch):
            result.points.extend(passed)  # passed-on points stay inside their batch
            self._emit_batch(result)
        else:
            self._emit(passed, 0)
            if result:
                self._emit(result, 0)

    def _emit_batch(self, batch: Batch) -> None:
        """BeginBatch (with the real size), points, EndBatch: never interleaved."""
        begin = udf_pb2.BeginBatch()
        begin.CopyFrom(batch.begin)
        begin.size = len(batch.points)
        self._respond(begin=begin)
        self._emit(batch.points, 0)
        end = batch.end
        if end is None:
            end = udf_pb2.EndBatch(name=begin.name, group=begin.group, byName=begin.byName,
                                   tmax=max((p.time for p in batch.points), default=0))
            end.tags.update(begin.tags)
        self._respond(end=end)


def _in_input_order(points: Sequence[udf_pb2.Point], out: Sequence[udf_pb2.Point | Encoded],
                    passed: list[udf_pb2.Point]) -> list[udf_pb2.Point | Encoded]:
    """Handler output and passed-on rejected points, in the order the points came in; a
    point the handler made (not an input) stays right after the one before it."""
    position = {id(point): i for i, point in enumerate(points)}
    keyed, last = [], -1
    for point in out:
        last = position.get(id(point.point if isinstance(point, Encoded) else point), last)
        keyed.append((last, point))
    keyed += [(position[id(point)], point) for point in passed]
    keyed.sort(key=lambda item: item[0])
    return [point for _, point in keyed]


Inputs = tuple[Sequence[udf_pb2.Point], list[bytes]]
"""A call's points and the messages they came in, in order."""


def _messages_by_point(inputs: Inputs | None) -> dict[int, bytes]:
    return dict(zip(map(id, inputs[0]), inputs[1], strict=True)) if inputs else {}


def _message_of(point: udf_pb2.Point, sent: dict[int, bytes]) -> bytes:
    """The message an input point came in; a point that is not an input, serialised."""
    return sent.get(id(point)) or framing.point_field(point.SerializeToString())


def _framed(message: bytes, fields: bytes) -> tuple[bytes, bytes, bytes]:
    """A frame of a point's message with encoded fields after it, as its three parts."""
    return framing.length_prefix(len(message) + len(fields)), message, fields


PIPE_BYTES = 1 << 20
"""What the agent's pipes hold: Linux's limit for a user, about 10,000 points (64 KiB else)."""


def _widen_pipe(fd: int) -> None:
    """Let a pipe hold PIPE_BYTES, so that Kapacitor writes on while the worker holds the GIL
    through a long call rather than wait for the reader thread (through kapacitord, 10,000
    series: ads_model +16%, the mirror +8%). Not a pipe (a socket, a file): left as it is."""
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)


def _parse_request(message: bytes) -> udf_pb2.Request:
    try:
        return Request.FromString(message)
    except Exception as exc:  # upb raises DecodeError subclasses
        raise ProtocolError(f"malformed request: {exc}") from exc


def _stamp(points: Sequence[udf_pb2.Point | Encoded], entry_ns: int
           ) -> list[udf_pb2.Point | Encoded]:
    """PROFILING_MODE: entry and exit times of the UDF and its latency on every output point
    (set on a point, or added to an Encoded's fields)."""
    exit_ns = time.time_ns()
    entry_ns = entry_ns or exit_ns
    stamps = udf_pb2.Point(fieldsInt={"udf_entry_ns": entry_ns, "udf_exit_ns": exit_ns},
                           fieldsDouble={"udf_latency_ms": (exit_ns - entry_ns) / 1e6})
    added = as_fields(stamps)
    out: list[udf_pb2.Point | Encoded] = []
    for item in points:
        if isinstance(item, Encoded):
            out.append(Encoded(item.point, item.fields + added))
        else:
            item.MergeFrom(stamps)
            out.append(item)
    return out
