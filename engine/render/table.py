"""Plain text columns, as `mlx history` and `mlx logs --summary` print them."""

from __future__ import annotations

from collections.abc import Sequence


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart, each as wide as its widest cell."""
    all_rows = [list(header), *(list(r) for r in rows)]
    widths = [max(len(row[i]) for row in all_rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in all_rows
    ]
    return "\n".join(lines) + "\n"
