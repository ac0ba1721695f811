"""Reading an eval dataset or a predictions file into columns (no pandas needed).

CSV/TSV cells stay strings until a caller asks for numbers; JSONL/JSON keep
their JSON types. Parquet needs ``pyarrow`` and says so when it is missing.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract import ProviderError

FORMATS = ("csv", "tsv", "jsonl", "json", "parquet")


@dataclass
class Table:
    columns: dict[str, list[Any]]
    rows: int
    source: str

    def column(self, name: str, role: str) -> list[Any]:
        if name not in self.columns:
            known = ", ".join(list(self.columns)[:12])
            raise ProviderError(f"{self.source} has no {role} column {name!r} (columns: {known})")
        return self.columns[name]

    def numeric(self, name: str, role: str = "feature") -> Any:
        """A float array of one column; an empty cell becomes NaN."""
        import numpy as np

        values = self.column(name, role)
        try:
            try:
                return np.array(values, dtype=float)
            except (ValueError, TypeError):
                return np.array([v if v not in ("", None) else "nan" for v in values], dtype=float)
        except (ValueError, TypeError):
            bad = next(v for v in values if not _is_number(v))
            raise ProviderError(
                f"{self.source}: {role} column {name!r} is not numeric (e.g. {bad!r})"
            ) from None

    def merged(self, other: Table) -> Table:
        """Columns of both, row by row; ``other`` wins on a name clash."""
        if other.rows != self.rows:
            raise ProviderError(
                f"{other.source} has {other.rows} rows but {self.source} has {self.rows}: "
                "a predictions file must have one row per dataset row, in the same order"
            )
        return Table({**self.columns, **other.columns}, self.rows, f"{self.source}+{other.source}")


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def detect_format(path: Path, declared: str | None = None) -> str:
    fmt = declared or path.suffix.lower().lstrip(".")
    if fmt in ("yml", "txt"):
        fmt = "csv"
    if fmt not in FORMATS:
        raise ProviderError(
            f"cannot read {path.name}: unknown format {fmt!r} (known: {', '.join(FORMATS)})"
        )
    return fmt


def read_table(path: Path, declared_format: str | None = None) -> Table:
    if not path.is_file():
        raise ProviderError(f"eval data not found: {path}")
    fmt = detect_format(path, declared_format)
    try:
        if fmt in ("csv", "tsv"):
            return _read_delimited(path, "\t" if fmt == "tsv" else ",")
        if fmt == "parquet":
            return _read_parquet(path)
        return _read_records(path, fmt)
    except (OSError, UnicodeDecodeError, csv.Error, json.JSONDecodeError) as exc:
        raise ProviderError(f"cannot read {path}: {exc}") from exc


def header(path: Path) -> list[str] | None:
    """Column names of a local CSV/TSV/JSONL file without reading it all (None: cannot tell)."""
    try:
        fmt = detect_format(path)
        with path.open(newline="", encoding="utf-8") as fh:
            if fmt in ("csv", "tsv"):
                return next(csv.reader(fh, delimiter="\t" if fmt == "tsv" else ","), None)
            if fmt == "jsonl":
                first = next((line for line in fh if line.strip()), None)
                record = json.loads(first) if first else None
                return list(record) if isinstance(record, dict) else None
    except (OSError, ValueError, UnicodeDecodeError, csv.Error, ProviderError):
        return None
    return None


def _read_delimited(path: Path, delimiter: str) -> Table:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        header = next(reader, None)
        if not header:
            raise ProviderError(f"{path} is empty (no header row)")
        body = [row for row in reader if row]
    for i, row in enumerate(body):
        if len(row) != len(header):
            raise ProviderError(
                f"{path}: line {i + 2} has {len(row)} cells, the header has {len(header)}"
            )
    cols = list(zip(*body, strict=True)) if body else [() for _ in header]
    return Table({h: list(c) for h, c in zip(header, cols, strict=True)}, len(body), path.name)


def _read_records(path: Path, fmt: str) -> Table:
    text = path.read_text(encoding="utf-8")
    if fmt == "jsonl":
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        records = json.loads(text)
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ProviderError(f"{path}: expected a list of JSON objects, one per row")
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    columns = {name: [r.get(name) for r in records] for name in names}
    return Table(columns, len(records), path.name)


def _read_parquet(path: Path) -> Table:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ProviderError(
            f"reading {path.name} needs pyarrow (pip install pyarrow), or export the eval "
            "data as CSV or JSONL"
        ) from None
    data = pq.read_table(path).to_pydict()
    rows = len(next(iter(data.values()))) if data else 0
    return Table({str(k): list(v) for k, v in data.items()}, rows, path.name)
