"""A light check of cron schedules (``schedule: "0 * * * *"``), without a cron library.

Five fields, UTC: minute, hour, day of month, month, day of week — each ``*``, a
number, a range ``a-b``, a step ``*/n`` or ``a-b/n``, or a list of those; months and
weekdays also by name (``jan``, ``mon``). The ``@hourly``-style macros are accepted.
This only says whether an expression is well-formed, the way crontab(5) reads it;
computing when it is due belongs to what runs the schedule.
"""

from __future__ import annotations

import re

MACROS = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")

#: (name, lowest, highest, names for numbers from ``lowest``)
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)

_ITEM = re.compile(r"^(?P<range>\*|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/(?P<step>[0-9]+))?$")


def check(expression: str) -> str:
    """``expression`` if it is a well-formed cron schedule; else ``ValueError`` saying why."""
    text = expression.strip().lower()
    if text in MACROS:
        return expression
    fields = text.split()
    if len(fields) != len(_FIELDS):
        raise ValueError(
            "not cron syntax: a schedule has 5 fields (minute hour day-of-month month "
            f'day-of-week, UTC), e.g. "0 * * * *"; this one has {len(fields)}'
        )
    for value, spec in zip(fields, _FIELDS, strict=True):
        for item in value.split(","):
            problem = _item_problem(item, *spec)
            if problem:
                raise ValueError(f"not a cron schedule: {problem}")
    return expression


def _item_problem(item: str, name: str, low: int, high: int, names: tuple[str, ...]) -> str | None:
    m = _ITEM.match(item)
    if m is None:
        return f"{name} {item!r} is not a number, a range a-b, * or a step */n"
    step = m.group("step")
    if step is not None and int(step) == 0:
        return f"{name} {item!r}: a step must be at least 1"
    if m.group("range") == "*":
        return None
    bounds = m.group("range").split("-")
    numbers = []
    for bound in bounds:
        number = _number(bound, low, names)
        if number is None or not low <= number <= high:
            return f"{name} {bound!r} is out of range ({low}-{high})"
        numbers.append(number)
    if len(numbers) == 2 and numbers[0] > numbers[1]:
        return f"{name} range {item!r} runs backwards"
    return None


def _number(text: str, low: int, names: tuple[str, ...]) -> int | None:
    if text.isdigit():
        return int(text)
    if text in names:
        return names.index(text) + low
    return None


_MACRO_FIELDS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def expand(expression: str) -> tuple[list[frozenset[int]], bool, bool]:
    """A well-formed schedule as the set of values of each field (day of week 7 is 0), and
    whether day of month and day of week are restricted (crontab(5): when both are, a day
    matches if either does)."""
    check(expression)
    text = expression.strip().lower()
    fields = _MACRO_FIELDS.get(text, text).split()
    out: list[frozenset[int]] = []
    for value, (_name, low, high, names) in zip(fields, _FIELDS, strict=True):
        values: set[int] = set()
        for item in value.split(","):
            m = _ITEM.match(item)
            assert m is not None  # check() passed
            step = int(m.group("step") or 1)
            if m.group("range") == "*":
                start, stop = low, high
            else:
                bounds = [_number(b, low, names) for b in m.group("range").split("-")]
                start = int(bounds[0])  # type: ignore[arg-type]
                # ``a/n`` runs from a to the field's end; ``a`` and ``a-b`` end at their bound
                single_step = len(bounds) == 1 and m.group("step") is not None
                stop = high if single_step else int(bounds[-1])  # type: ignore[arg-type]
            values.update(range(start, stop + 1, step))
        out.append(frozenset(values))
    out[4] = frozenset(0 if v == 7 else v for v in out[4])
    return out, fields[2] != "*", fields[4] != "*"
