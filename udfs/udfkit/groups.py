"""Per-group state with eviction: which slot each of a task's groups holds, and forgetting.

Every stateful UDF keeps something per group (a window, a detector's range). Groups come and
go (hosts, containers, sensors), so a group that sent nothing for ``forget_after`` of stream
time (the points' own timestamps, not the wall clock: a replay forgets as a live stream does)
is dropped, and its slot goes to the next new group. Slots are small dense integers, so a
handler can keep its state in lists or arrays indexed by slot.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

DAY_NS = 24 * 3600 * 10**9
SWEEPS_PER_PERIOD = 8
"""How often idle groups are looked for, per forget_after of stream time (a group is
dropped at most forget_after / SWEEPS_PER_PERIOD late)."""


class GroupTable:
    """Slots for a task's groups, each with the time of its last point."""

    def __init__(self, forget_after_ns: int = DAY_NS) -> None:
        if forget_after_ns < 0:
            raise ValueError(f"forget_after must be >= 0, got {forget_after_ns}")
        self.forget_after = forget_after_ns  # 0: never forget
        self.by_group: dict[str, int] = {}
        self.keys: list[str | None] = []  # by slot; None: free
        self.last_ns: list[int] = []  # by slot
        self.free: list[int] = []
        self.now_ns = 0  # the latest point time seen
        self._swept_ns = 0
        self._undated: list[int] = []

    def __len__(self) -> int:
        return len(self.by_group)

    @property
    def capacity(self) -> int:
        """Slots in use or free: what a handler's per-slot arrays must hold."""
        return len(self.keys)

    def slot(self, group: str, time_ns: int) -> int:
        """The slot of `group` (a new one for a group not seen or forgotten), marked as
        having sent a point at `time_ns`."""
        if self._undated:
            for undated in self._undated:
                self.last_ns[undated] = max(self.last_ns[undated], time_ns)
            self._undated.clear()
        slot = self.by_group.get(group)
        if slot is None:
            slot = self._assign(group)
        if time_ns > self.last_ns[slot]:
            self.last_ns[slot] = time_ns
            if time_ns > self.now_ns:
                self.now_ns = time_ns
        return slot

    def slots(self, groups: list[str], times: list[int]) -> list[int]:
        """slot() of each group and time, in one call (for vectorised handlers)."""
        if self._undated and times:
            self.slot(groups[0], times[0])
        found: list[int | None] = list(map(self.by_group.get, groups))
        if None in found:  # new groups (a group new in this call may come more than once)
            for i, group in enumerate(groups):
                if found[i] is None:
                    found[i] = self.by_group[group] if group in self.by_group \
                        else self._assign(group)
        slots = cast(list[int], found)
        last = self.last_ns
        for slot, time_ns in zip(slots, times, strict=True):
            if time_ns > last[slot]:
                last[slot] = time_ns
        if times:
            self.now_ns = max(self.now_ns, max(times))
        return slots

    def _assign(self, group: str) -> int:
        if self.free:
            slot = self.free.pop()
            self.keys[slot] = group
            self.last_ns[slot] = -(2**63)
        else:
            slot = len(self.keys)
            self.keys.append(group)
            self.last_ns.append(-(2**63))
        self.by_group[group] = slot
        return slot

    def expire(self) -> list[int]:
        """Forget the groups idle for longer than forget_after; returns their slots, which
        the handler must reset (they go to new groups). Cheap between sweeps."""
        if not self.forget_after or self.now_ns - self._swept_ns < \
                self.forget_after // SWEEPS_PER_PERIOD:
            return []
        self._swept_ns = self.now_ns
        horizon = self.now_ns - self.forget_after
        gone = [slot for slot, key in enumerate(self.keys)
                if key is not None and self.last_ns[slot] < horizon]
        for slot in gone:
            del self.by_group[self.keys[slot]]  # type: ignore[arg-type]
            self.keys[slot] = None
        self.free.extend(reversed(gone))
        return gone

    def live(self) -> list[int]:
        """Slots in use, in slot order."""
        return [slot for slot, key in enumerate(self.keys) if key is not None]

    def state(self) -> dict[str, Any]:
        """The live groups in slot order with their last times (slots are renumbered
        0 .. n - 1 by restore())."""
        live = self.live()
        return {"keys": [self.keys[s] for s in live], "last_ns": [self.last_ns[s] for s in live],
                "now_ns": self.now_ns}

    @classmethod
    def restore(cls, state: dict[str, Any], forget_after_ns: int) -> GroupTable:
        table = cls(forget_after_ns)
        keys = [str(k) for k in state["keys"]]
        table.keys, table.last_ns = list(keys), [int(t) for t in state["last_ns"]]
        table.by_group = {key: slot for slot, key in enumerate(keys)}
        table.now_ns = table._swept_ns = int(state.get("now_ns", max(table.last_ns, default=0)))
        return table

    def add(self, groups: Iterable[str]) -> list[int]:
        """Slots for groups restored without their last times: they count as seen at the
        time of the next point the table sees."""
        slots = [self.by_group[g] if g in self.by_group else self._assign(g) for g in groups]
        self._undated.extend(slots)
        return slots
