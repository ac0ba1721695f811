"""common.durations: the one grammar, its errors, its formatter — and that it accepts, with the
same meaning, everything the three grammars it replaced accepted."""

from __future__ import annotations

import itertools
import re

import pytest
from pydantic import BaseModel, ValidationError

from common.durations import (
    JSON_PATTERN,
    NOT_A_DURATION,
    DurationError,
    format_duration,
    parse_duration,
)
from specs.base import Duration

# -- the grammar ---------------------------------------------------------------------------
VALID: list[tuple[str, float]] = [
    ("0s", 0.0),
    ("500ms", 0.5),
    ("1.5ms", 0.0015),
    ("30s", 30.0),
    ("10m", 600.0),
    ("1.5m", 90.0),
    ("2h", 7200.0),
    ("1d", 86400.0),
    ("2w", 1_209_600.0),
    ("1h30m", 5400.0),
    ("1m30s", 90.0),
    ("30m1h", 5400.0),  # any order: parts add up
    ("1h1ms", 3600.001),
    ("1ms5s", 5.001),
    ("1w2d3h4m5s6ms", 604800 + 2 * 86400 + 3 * 3600 + 4 * 60 + 5.006),
    ("10M", 600.0),  # any case: "m" is minutes, never months
    ("2H", 7200.0),
    ("500MS", 0.5),
    ("500Ms", 0.5),
    (" 10m ", 600.0),  # spaces around the whole
    ("007s", 7.0),
]


@pytest.mark.parametrize(("text", "seconds"), VALID)
def test_every_form(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds, rel=1e-12)


INVALID = [
    "",
    " ",
    "10",  # no unit
    "m",  # no number
    "10 m",  # a space inside
    "1h 30m",
    "10min",
    "10 minutes",
    "1y",
    "1mo",
    "-5s",  # never negative
    "+5s",
    ".5s",  # a digit before the point
    "5.s",
    "1e3s",
    "1_000s",
    "5s,",
    "manual",
    "inf s",
    "10m\x00",
]


@pytest.mark.parametrize("text", INVALID)
def test_errors_name_the_text_and_show_the_grammar(text: str) -> None:
    with pytest.raises(DurationError) as err:
        parse_duration(text)
    assert str(err.value) == f"{text!r} is {NOT_A_DURATION}"
    assert isinstance(err.value, ValueError) and err.value.text == text


# -- the formatter -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.0004, "0s"),  # to the millisecond
        (0.25, "250ms"),
        (1.5, "1s500ms"),
        (30, "30s"),
        (90, "1m30s"),
        (600, "10m"),
        (5400, "1h30m"),
        (86400, "1d"),
        (90061, "1d1h1m1s"),
        (604800, "1w"),
        (1_209_600 + 0.001, "2w1ms"),
    ],
)
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [-1.0, float("nan"), float("inf")])
def test_format_refuses_what_is_no_duration(seconds: float) -> None:
    with pytest.raises(ValueError, match="finite number of seconds >= 0"):
        format_duration(seconds)


@pytest.mark.parametrize("ms", [0, 1, 999, 1000, 59_999, 3_600_001, 90_061_500, 10**12 + 7])
def test_format_then_parse_is_the_same_to_the_millisecond(ms: int) -> None:
    assert round(parse_duration(format_duration(ms / 1000)) * 1000) == ms


# -- what the three old grammars accepted is accepted, and means the same ------------------
def _old_spec(text: str) -> float | None:
    """specs.base.Duration (pydantic's pattern: no spaces, one part) read by the controller's
    ``seconds()`` and the gateway provider's ``duration_s`` (both float(number) * unit)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", text)
    if match is None:
        return None
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    return float(match.group(1)) * units[match.group(2)]


def _old_since(text: str) -> float | None:
    """inference.times.parse_duration (``mlx logs --since``)."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
    value = text.strip().lower()
    if not re.fullmatch(r"(?:(\d+(?:\.\d+)?)([smhdw]))+", value):
        return None
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)([smhdw])", value))


def _corpus() -> list[str]:
    numbers = ["0", "1", "10", "1.5", "007", "0.25", "2.", ".5", "١٢"]  # Arabic-Indic digits too
    units = ["ms", "s", "m", "h", "d", "w", "MS", "Ms", "S", "M", "H", "D", "W", "", "x", "min"]
    parts = [n + u for n in numbers for u in units]
    out = [*parts, *(" " + p + " " for p in parts[:40]), *(p + "\n" for p in parts[:40])]
    out += ["".join(pair) for pair in itertools.product(parts[:60], repeat=2)]
    return out


def test_nothing_that_was_a_duration_stops_being_one_or_changes_meaning() -> None:
    checked = 0
    for text in _corpus():
        for old in (_old_spec(text), _old_since(text)):
            if old is not None:
                assert parse_duration(text) == old, text  # exactly: the same float arithmetic
                checked += 1
    assert checked > 500


def test_the_json_schema_pattern_is_the_grammar() -> None:
    """Editors check spec files with ``mlx schema``: its pattern accepts what mlx accepts."""
    pattern = re.compile(JSON_PATTERN)
    for text in [*_corpus(), *(t for t, _ in VALID), *INVALID]:
        try:
            parse_duration(text)
            valid = True
        except DurationError:
            valid = False
        assert (pattern.search(text) is not None) is valid, repr(text)


# -- specs validate with it ----------------------------------------------------------------
class _Spec(BaseModel):
    every: Duration


@pytest.mark.parametrize(("text", "_seconds"), VALID)
def test_a_spec_keeps_the_text_as_written(text: str, _seconds: float) -> None:
    assert _Spec(every=text).every == text  # its hash is the user's text


@pytest.mark.parametrize("text", INVALID)
def test_a_spec_refuses_with_the_one_message(text: str) -> None:
    with pytest.raises(ValidationError) as err:
        _Spec(every=text)
    (problem,) = err.value.errors()
    assert (problem["type"], problem["msg"]) == ("duration", NOT_A_DURATION)
