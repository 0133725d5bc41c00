"""Typed scenario parameters in user units: counts, seconds, rates per second,
flags and choices.

A :class:`Param` declares a parameter's name, kind, default, bounds and
documentation; :meth:`Param.parse` turns a user value (a number from a file or
a string from ``--set``) into the canonical Python value, raising
``InvalidArgument`` with a one-line message that names the parameter, e.g.
``devices: must be ≥ 1, got 0``.

Durations are given in seconds (``0.001``) or with a unit suffix (``"1ms"``,
``"20us"``, ``"20µs"``, ``"500ns"``, ``"2s"``); engine configs take
nanoseconds, see :func:`to_ns`. Rates are per second, optionally with a
multiplier (``"50k"``, ``"2M"``, ``"1G/s"``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal, TypeAlias

from msixcore._core import InvalidArgument

__all__ = [
    "Param",
    "ParamKind",
    "ParamValue",
    "format_seconds",
    "format_value",
    "parse_seconds",
    "to_ns",
]

ParamValue: TypeAlias = int | float | bool | str
"""The value of a scenario parameter (after parsing)."""

ParamKind: TypeAlias = Literal["count", "number", "seconds", "rate", "flag", "choice", "version"]
"""``count``: an integer; ``number``: a real; ``seconds``: a duration in
seconds; ``rate``: interrupts per second; ``flag``: a boolean; ``choice``: one
of a fixed set of strings."""

_UNITS: dict[ParamKind, str] = {
    "count": "",
    "number": "",
    "seconds": "s",
    "rate": "/s",
    "flag": "",
    "choice": "",
    "version": "",
}

_TIME_SUFFIX = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ns": 1e-9}
_TIME_RE = re.compile(r"^\s*([-+]?[0-9.]+(?:[eE][-+]?[0-9]+)?)\s*(s|ms|us|µs|μs|ns)?\s*$")
_RATE_SUFFIX = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9}
_RATE_RE = re.compile(r"^\s*([-+]?[0-9.]+(?:[eE][-+]?[0-9]+)?)\s*(k|M|G)?\s*(?:/s)?\s*$")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def parse_seconds(name: str, value: object) -> float:
    """A duration in seconds from a number or a string with a unit suffix.

    ``parse_seconds("gap", "1ms") == 0.001``; bad input raises
    ``InvalidArgument`` naming ``name``.
    """
    if isinstance(value, bool):
        raise InvalidArgument(f"{name}: must be a duration in seconds, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        m = _TIME_RE.match(value)
        if m is None:
            raise InvalidArgument(
                f"{name}: must be a duration such as 0.001, 1ms, 20us or 500ns, got {value!r}"
            )
        try:
            seconds = float(m.group(1)) * _TIME_SUFFIX[m.group(2) or "s"]
        except ValueError:
            raise InvalidArgument(f"{name}: not a number: {value!r}") from None
    else:
        raise InvalidArgument(f"{name}: must be a duration in seconds, got {value!r}")
    if not math.isfinite(seconds):
        raise InvalidArgument(f"{name}: must be finite, got {value!r}")
    return seconds


def to_ns(seconds: float) -> int:
    """Seconds to whole nanoseconds (rounded to nearest): ``to_ns(5e-7) == 500``."""
    return round(seconds * 1e9)


def format_seconds(seconds: float) -> str:
    """A duration for humans: ``format_seconds(2e-5) == "20 µs"``."""
    if seconds == 0:
        return "0 s"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(seconds) >= scale:
            return f"{seconds / scale:g} {unit}"
    return f"{seconds / 1e-9:g} ns"


def format_value(kind: ParamKind, value: ParamValue) -> str:
    """A parameter value for humans, with its unit."""
    if kind == "seconds" and isinstance(value, int | float) and not isinstance(value, bool):
        return format_seconds(float(value))
    if kind == "rate" and isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:,g}/s"
    if kind == "flag":
        return "true" if value else "false"
    return str(value)


def _bound_text(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


@dataclass(frozen=True)
class Param:
    """One scenario parameter: name, kind, default, inclusive bounds (in user
    units), allowed choices and a one-line description."""

    name: str
    kind: ParamKind
    default: ParamValue
    doc: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    positive: bool = False
    """Require a value > 0 (for durations: at least 1 ns once converted)."""

    @property
    def unit(self) -> str:
        """The unit of the value: ``"s"``, ``"/s"`` or ``""``."""
        return _UNITS[self.kind]

    def parse(self, value: object) -> ParamValue:
        """Check and convert a user value; raises ``InvalidArgument`` naming
        the parameter."""
        name = self.name
        if self.kind == "flag":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
                return value.strip().lower() in _TRUE
            raise InvalidArgument(f"{name}: must be true or false, got {value!r}")
        if self.kind == "version":
            from msixcore.versions import parse_version

            return parse_version(name, value)
        if self.kind == "choice":
            if isinstance(value, str) and value in self.choices:
                return value
            raise InvalidArgument(
                f"{name}: must be one of {', '.join(self.choices)}, got {value!r}"
            )
        number: int | float
        if self.kind == "count":
            number = self._parse_int(value)
        elif self.kind == "seconds":
            number = parse_seconds(name, value)
        else:
            number = self._parse_float(value)
        self._check_bounds(number, value)
        if self.kind == "seconds":
            return self._at_resolution(number, value)
        return number

    def _at_resolution(self, seconds: float, raw: object) -> float:
        """The duration the engine runs, in whole nanoseconds (its resolution),
        so what a run reports is what it used. A non-zero duration under half
        a nanosecond would silently run as 0 and is refused."""
        ns = to_ns(seconds)
        if ns == 0 and seconds != 0:
            raise InvalidArgument(
                f"{self.name}: {raw!r} is below the engine's resolution of 1 ns (use 0 or ≥ 1ns)"
            )
        return ns / 1e9

    def _parse_int(self, value: object) -> int:
        if isinstance(value, bool):
            raise InvalidArgument(f"{self.name}: must be an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise InvalidArgument(f"{self.name}: must be an integer, got {value!r}")

    def _parse_float(self, value: object) -> float:
        number: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            # Rates take a k, M or G multiplier and an optional "/s": 50k, 2M/s.
            m = _RATE_RE.match(value) if self.kind == "rate" else None
            try:
                if m is not None:
                    number = float(m.group(1)) * _RATE_SUFFIX[m.group(2) or ""]
                else:
                    number = float(value.strip())
            except ValueError:
                number = None
        if number is None:
            raise InvalidArgument(f"{self.name}: must be a number, got {value!r}")
        if not math.isfinite(number):
            raise InvalidArgument(f"{self.name}: must be finite, got {value!r}")
        return number

    def _check_bounds(self, number: float, raw: object) -> None:
        name, unit = self.name, (f" {self.unit}" if self.unit else "")
        shown = _bound_text(number)
        if self.minimum is not None and number < self.minimum:
            raise InvalidArgument(
                f"{name}: must be ≥ {_bound_text(self.minimum)}{unit}, got {shown}{unit}"
            )
        if self.maximum is not None and number > self.maximum:
            raise InvalidArgument(
                f"{name}: must be ≤ {_bound_text(self.maximum)}{unit}, got {shown}{unit}"
            )
        if self.positive:
            if number <= 0:
                raise InvalidArgument(f"{name}: must be > 0{unit}, got {shown}{unit}")
            if self.kind == "seconds" and to_ns(number) < 1:
                raise InvalidArgument(f"{name}: must be at least 1 ns, got {raw!r}")
