"""Errors that point at the user's line (OpenTofu's tfdiags, rustc's snippets)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Source:
    """A place in a spec file; line and column are 1-based."""

    file: str
    line: int | None = None
    column: int | None = None
    #: Directory ``file`` is relative to (for printing the snippet); not shown.
    root: str | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        if self.line is None:
            return self.file
        if self.column is None:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Diagnostic:
    summary: str
    source: Source | None = None
    detail: str | None = None
    #: Further places worth showing (e.g. the first definition of a duplicate).
    related: tuple[tuple[str, Source], ...] = ()
    severity: str = "error"

    def render(self, root: Path | None = None) -> str:
        lines = [f"{self.severity.capitalize()}: {self.summary}"]
        if self.source is not None:
            lines.append(f"  --> {self.source}")
            lines.extend(_snippet(self.source, root))
        for label, src in self.related:
            lines.append(f"  {label} --> {src}")
            lines.extend(_snippet(src, root))
        if self.detail:
            lines.extend(f"  {line}" if line else "" for line in self.detail.splitlines())
        return "\n".join(lines)


def _snippet(src: Source, root: Path | None) -> list[str]:
    if src.line is None:
        return []
    path = Path(src.file)
    base = Path(src.root) if src.root else root
    if base is not None and not path.is_absolute():
        path = base / path
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    if not 0 < src.line <= len(text):
        return []
    num = str(src.line)
    pad = " " * len(num)
    out = [f"  {pad} |", f"  {num} | {text[src.line - 1]}"]
    if src.column:
        out.append(f"  {pad} | {' ' * (src.column - 1)}^")
    return out


class MlxError(Exception):
    """Anything the user can fix. Carries every diagnostic found, not only the first."""

    def __init__(self, diagnostics: Diagnostic | Iterable[Diagnostic] | str):
        if isinstance(diagnostics, str):
            diagnostics = [Diagnostic(diagnostics)]
        elif isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        unique: list[Diagnostic] = []
        for d in diagnostics:  # one cause reached twice (a damaged row two resources read)
            if d not in unique:
                unique.append(d)
        self.diagnostics: list[Diagnostic] = unique
        super().__init__("\n".join(d.summary for d in self.diagnostics))

    def render(self, root: Path | None = None) -> str:
        return "\n\n".join(d.render(root) for d in self.diagnostics)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean "x"?)`` or an empty string."""
    import difflib

    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""
