"""The handler API: everything a UDF author writes is a Handler subclass.

A handler declares what it wants and provides, its options and its error
policy; the agent owns the protocol, the I/O, keepalives, snapshots and error
counting. Stream handlers implement ``point`` (one point in, zero or more out)
or, for vectorised work, ``points`` (every point already waiting, in order).
Batch handlers implement ``batch``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from udfkit import udf_pb2
from udfkit.options import Opt
from udfkit.points import Annotated, Encoded

STREAM, BATCH = udf_pb2.STREAM, udf_pb2.BATCH
Point = udf_pb2.Point
Out = Point | list[Point] | None
T = TypeVar("T")


@dataclass
class Batch:
    """A whole batch: its BeginBatch, its points in order, and its EndBatch."""

    begin: udf_pb2.BeginBatch
    points: list[Point] = field(default_factory=list)
    end: udf_pb2.EndBatch | None = None


@dataclass(frozen=True)
class TaskContext:
    """Who runs this process: the task and node ids from Init, for log lines and errors."""

    task: str = ""
    node: str = ""

    def __str__(self) -> str:
        return f"{self.task or '?'}/{self.node or '?'}"


class Handler:
    """Base class of every UDF. Subclasses override the class attributes and some methods."""

    name: ClassVar[str] = "udf"
    wants: ClassVar[udf_pb2.EdgeType.ValueType] = STREAM
    provides: ClassVar[udf_pb2.EdgeType.ValueType] = STREAM
    options: ClassVar[tuple[Opt, ...]] = ()
    snapshot_version: ClassVar[int] = 0
    """0: the handler keeps no state worth saving; otherwise the format version of state()."""
    snapshot_oldest: ClassVar[int | None] = None
    """The oldest format restore() still reads (None: only snapshot_version)."""

    on_error: str = "drop"
    """What happens to a point the handler fails on: "drop" it, or "pass" it through with
    an ``error_field`` string field naming the problem."""
    error_field: ClassVar[str] = "error"
    column: str | None = None
    """A vectorised stream handler that reads one numeric field sets it (in init) to that
    field's name: points() is then given a udfkit.columns.Columns, the call's groups, times
    and that field as columns, read without a Point object per point."""

    _rejected: list[tuple[Point, str]] | None = None

    def reject(self, point: Point, reason: str) -> None:
        """Hand a bad point back from points()/batch(): the agent counts and logs it, and
        drops it or passes it on with the error field, by on_error."""
        if self._rejected is None:
            self._rejected = []
        self._rejected.append((point, reason))

    def isolated(self, series: str, points: Iterable[Point], work: Callable[[], T]) -> T | None:
        """Run one series' share of a vectorised call. If it raises, only that series' points
        are rejected (each with the reason) and None comes back; other series go on."""
        try:
            return work()
        except Exception as exc:  # one series' failure must not touch another series
            reason = f"series {series!r}: {type(exc).__name__}: {exc}"
            for point in points:
                self.reject(point, reason)
            return None

    def take_rejected(self) -> list[tuple[Point, str]]:
        rejected, self._rejected = self._rejected or [], None
        return rejected

    def init(self, options: dict[str, Any], context: TaskContext) -> None:
        """Receive checked options. Do heavy imports and model loading here, not at import."""

    def point(self, point: Point) -> Out:
        """Handle one stream point; return None, a point, or a list of points."""
        raise NotImplementedError(f"{self.name} does not take stream points")

    def points(self, points: Sequence[Point]) -> Sequence[Point | Encoded] | Annotated:
        """Vectorised form of point(); the agent calls it when a subclass overrides it.
        Output items may be points or udfkit.points.Encoded (a point and fields to add), or
        the whole output one udfkit.points.Annotated (fields added to each point).

        Bad points go to reject(), not into the result; if it raises, every point
        of the call is treated as failed.
        """
        raise NotImplementedError

    def batch(self, batch: Batch) -> Batch | list[Point] | None:
        """Handle one whole batch; return a batch, stream points, or None."""
        raise NotImplementedError(f"{self.name} does not take batches")

    def state(self) -> Any:
        """State for a snapshot (only when snapshot_version > 0): JSON-serialisable data, or
        bytes for large state (udfkit.snapshot.pack_arrays), saved as they are."""
        return None

    def restore(self, state: Any) -> None:
        """Load state() output from an earlier process of the same task."""

    @classmethod
    def is_vectorised(cls) -> bool:
        return cls.points is not Handler.points
