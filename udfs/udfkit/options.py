"""Declared UDF options: the Info response is built from them and Init is checked against them.

Kapacitor checks option names and types against Info when a task is defined;
the checks here repeat that for the socket mode and the replay tool, and add
what Kapacitor cannot know: required options, value ranges, choices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from udfkit.udf_pb2 import BOOL, DOUBLE, DURATION, INT, STRING, ValueType

TYPE_NAMES: dict[int, str] = {BOOL: "BOOL", INT: "INT", DOUBLE: "DOUBLE", STRING: "STRING",
                              DURATION: "DURATION"}
_VALUE_ATTR = {
    BOOL: "boolValue",
    INT: "intValue",
    DOUBLE: "doubleValue",
    STRING: "stringValue",
    DURATION: "durationValue",
}
_NO_DEFAULT = object()


class OptionError(ValueError):
    """An option in the TICKscript is missing, of the wrong type or out of range."""


@dataclass(frozen=True)
class Opt:
    """One option a UDF accepts, e.g. ``Opt("threshold", DOUBLE, 3.0, check=positive)``.

    ``default`` left out makes the option required. ``repeated`` options take
    any number of values and arrive as a list. ``check`` returns an error
    message for a bad value, or None.
    """

    name: str
    type: ValueType.ValueType
    default: Any = _NO_DEFAULT
    repeated: bool = False
    choices: tuple[Any, ...] = ()
    check: Callable[[Any], str | None] | None = None
    help: str = ""

    @property
    def required(self) -> bool:
        return self.default is _NO_DEFAULT


def positive(value: float) -> str | None:
    return None if value > 0 else "must be > 0"


def non_negative(value: float) -> str | None:
    return None if value >= 0 else "must be >= 0"


def parse_options(specs: Iterable[Opt], options: Iterable[Any]) -> dict[str, Any]:
    """Turn InitRequest.options into {name: value}; raise OptionError naming every bad option."""
    by_name = {spec.name: spec for spec in specs}
    given: dict[str, list[tuple[int, Any]]] = {}
    errors: list[str] = []
    for option in options:
        if option.name not in by_name:
            known = ", ".join(sorted(by_name)) or "none"
            errors.append(f"{option.name}: unknown option (this UDF takes: {known})")
            continue
        values = [(v.type, getattr(v, _VALUE_ATTR.get(v.type, "stringValue")))
                  for v in option.values]
        given.setdefault(option.name, []).extend(values)
    result: dict[str, Any] = {}
    for spec in by_name.values():
        try:
            result[spec.name] = _resolve(spec, given.get(spec.name))
        except OptionError as exc:
            errors.append(str(exc))
    if errors:
        raise OptionError("; ".join(errors))
    return result


def _resolve(spec: Opt, values: list[tuple[int, Any]] | None) -> Any:
    if values is None:
        if spec.required:
            raise OptionError(f"{spec.name}: required option is missing (expected {_expect(spec)})")
        return list(spec.default) if spec.repeated else spec.default
    if not spec.repeated and len(values) != 1:
        raise OptionError(f"{spec.name}: expected one {_expect(spec)} value, got {len(values)}")
    checked = [_check_value(spec, vtype, value) for vtype, value in values]
    return checked if spec.repeated else checked[0]


def _check_value(spec: Opt, vtype: int, value: Any) -> Any:
    if vtype != spec.type:
        got = TYPE_NAMES.get(vtype, vtype)
        raise OptionError(f"{spec.name}: expected {_expect(spec)}, got {got}")
    if spec.choices and value not in spec.choices:
        allowed = ", ".join(repr(c) for c in spec.choices)
        raise OptionError(f"{spec.name}: expected one of {allowed}, got {value!r}")
    if spec.check is not None:
        problem = spec.check(value)
        if problem:
            raise OptionError(f"{spec.name}: {problem}, got {value!r}")
    return value


def _expect(spec: Opt) -> str:
    return TYPE_NAMES[spec.type]
