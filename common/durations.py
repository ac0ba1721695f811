"""The one duration grammar: spec fields (``pause``, ``interval``, ``timeout``, ``window``,
``cache.ttl``), the rollout controller and ``mlx logs --since`` read durations with it.

A duration is one or more parts, each a number and a unit, largest first or not:
``500ms``, ``30s``, ``10m``, ``1.5h``, ``1h30m``, ``2d``, ``1w``. Units: ``ms`` milliseconds,
``s`` seconds, ``m`` minutes (never months), ``h`` hours, ``d`` days, ``w`` weeks; any case;
spaces around the whole are ignored.

This is the union of the three grammars mlx had, so that whatever one of them accepted is
still accepted, and means the same: specs took one part with ``ms|s|m|h|d``; ``--since``
took several parts with ``s|m|h|d|w`` in any case. (``10ms`` was no ``--since`` duration;
``1h30m`` and ``2w`` were no spec duration.)
"""

from __future__ import annotations

import math
import re

#: Seconds in each unit; ``ms`` is tried before ``m``.
UNITS: dict[str, float] = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
_PART = r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)"
_DURATION = re.compile(rf"(?:{_PART})+")
_PARTS = re.compile(_PART)

#: The grammar as a JSON Schema ``pattern`` (ECMA-262: no flags, so each case is spelled).
JSON_PATTERN = r"^\s*(?:\d+(?:\.\d+)?(?:[mM][sS]|[sSmMhHdDwW]))+\s*$"

#: What a user is told when a text is not a duration: a spec error adds the text after it
#: ("(got '10 minutes')"), ``DurationError`` before it.
NOT_A_DURATION = (
    "not a duration: write a number and a unit (ms, s, m, h, d or w), as in 10m or 1h30m"
)


class DurationError(ValueError):
    """``text`` is not a duration; the message names it and shows the grammar."""

    def __init__(self, text: str):
        super().__init__(f"{text!r} is {NOT_A_DURATION}")
        self.text = text


def parse_duration(text: str) -> float:
    """Seconds in ``text`` (``"1h30m"`` → 5400.0); ``DurationError`` if it is not a duration.

    Each part is ``float(number) * unit`` and the parts are summed, so a one-part duration
    is exactly what each of the old parsers computed."""
    value = text.strip().lower()
    if not _DURATION.fullmatch(value):
        raise DurationError(text)
    return sum(float(number) * UNITS[unit] for number, unit in _PARTS.findall(value))


#: The units ``format_duration`` writes, largest first, in milliseconds.
_FORMAT_MS = (("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000),
              ("s", 1000), ("ms", 1))  # fmt: skip


def format_duration(seconds: float) -> str:
    """``seconds`` in the grammar, to the millisecond, largest units first and none of them
    zero: 5400 → ``1h30m``, 0.25 → ``250ms``, 90061 → ``1d1h1m1s``, 0 → ``0s``.

    ``parse_duration(format_duration(x))`` is ``x`` to the millisecond."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a duration is a finite number of seconds >= 0, not {seconds!r}")
    left = round(seconds * 1000)
    parts = []
    for unit, size in _FORMAT_MS:
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
