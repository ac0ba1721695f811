"""Colour on a terminal, as Terraform's: symbols and verbs of plans, errors and warnings.

Renderers produce plain text (their output is golden-tested and piped into CI logs);
colour is added on the way out, line by line, only when stdout is a terminal and
neither ``NO_COLOR`` (https://no-color.org) nor ``--no-color`` says otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TextIO

_RESET = "\033[0m"
_BOLD, _GREEN, _YELLOW, _RED, _CYAN = "\033[1m", "\033[32m", "\033[33m", "\033[31m", "\033[36m"

#: (pattern of a line, colour of the matched part)
_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(\s*)(\+/-|-/\+)(?= )"), _YELLOW),
    (re.compile(r"^(\s*)(\+)(?= )"), _GREEN),
    (re.compile(r"^(\s*)(~)(?= )"), _YELLOW),
    (re.compile(r"^(\s*)(-)(?= )"), _RED),
    (re.compile(r"^(\s*)(>)(?= )"), _CYAN),
    (re.compile(r"^()(Error:)"), _RED + _BOLD),
    (re.compile(r"^()(Warning:)"), _YELLOW + _BOLD),
    (re.compile(r"^()(Plan:|Apply complete!|No changes\.)"), _BOLD),
    (re.compile(r"^()(Apply failed\.)"), _RED + _BOLD),
    (re.compile(r"^(\S+: )(Gate FAILED|Error)"), _RED + _BOLD),
    (re.compile(r"^(\S+: )(Gate passed|Verdict reused|\w+ complete)"), _GREEN),
]


def paint(line: str) -> str:
    for pattern, colour in _RULES:
        m = pattern.match(line)
        if m:
            start, end = m.span(2)
            return f"{line[:start]}{colour}{line[start:end]}{_RESET}{line[end:]}"
    return line


def wanted(stream: TextIO, environ: Mapping[str, str], argv: Sequence[str]) -> bool:
    if "--no-color" in argv or environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Painted:
    """A text stream that colours each complete line written through it."""

    def __init__(self, stream: TextIO):
        self._stream = stream
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._stream.write(paint(line) + "\n")
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self._stream.write(paint(self._pending))
            self._pending = ""
        self._stream.flush()

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)
