"""A monitor's reference profile, built once per reference fingerprint and kept.

The profile (``analysis.drift.ReferenceProfile``: frozen bin edges, top-K categories,
reference counts) is a JSON file under the data directory,
``<data_dir>/monitors/profiles/<fingerprint>.json``, written atomically; the monitor's
outputs record the fingerprint and that path. A second monitor, or an update, over the same
reference reads the file instead of re-reading the data (Evidently recomputes it every run,
evidently#506). The reference is read once through DuckDB (CSV or Parquet); its columns are
the monitor's ``features``, or every column but the ``label``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analysis.base import AnalysisError
from analysis.drift import ReferenceProfile, build_reference
from inference.drift_files import source_sql


class ReferenceError(Exception):
    """The reference cannot be read or profiled: the monitor's state is ``error``."""


def profile_path(data_dir: Path, fingerprint: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in fingerprint)
    return data_dir / "monitors" / "profiles" / f"{safe}.json"


def read_columns(
    path: str | Path, features: Sequence[str], label: str | None, source: str | None = None
) -> dict[str, list[Any]]:
    """The reference's columns (``features``, or all but ``label``), through DuckDB. Errors
    name ``source`` (the dataset's address) when given, else ``path``; a feature the file
    lacks is named with the columns it has (a prediction-drift monitor's default column
    ``prediction`` is the usual miss)."""
    import duckdb

    where = source or str(path)
    try:
        sql = source_sql(path)
        con = duckdb.connect()
        try:
            names = [str(r[0]) for r in con.execute(f"DESCRIBE SELECT * FROM {sql}").fetchall()]
            missing = [f for f in features if f not in names]
            if missing:
                s = "s" if len(missing) > 1 else ""
                raise ReferenceError(
                    f"{where} has no column{s} {', '.join(map(repr, missing))} "
                    f"(its columns: {', '.join(map(repr, names)) or 'none'}); "
                    "`features` names the columns to compare"
                )
            chosen = list(features) or [n for n in names if n != label]
            if not chosen:
                raise ReferenceError(f"{where}: no feature columns")
            cols = ", ".join('"' + c.replace('"', '""') + '"' for c in chosen)
            rows = con.execute(f"SELECT {cols} FROM {sql}").fetchall()
        finally:
            con.close()
    except (duckdb.Error, ValueError, OSError) as exc:
        raise ReferenceError(f"cannot read the reference {where}: {exc}") from None
    return {name: [row[i] for row in rows] for i, name in enumerate(chosen)}


def stored_profile(data_dir: Path, fingerprint: str, features: Sequence[str] = ()) -> Path:
    """Where the profile of this reference (and feature selection) is kept."""
    key = fingerprint if not features else f"{fingerprint}-{_selection(features)}"
    return profile_path(data_dir, key)


def ensure_profile(
    data_dir: Path,
    fingerprint: str,
    path: str | Path,
    features: Sequence[str] = (),
    label: str | None = None,
    source: str | None = None,
) -> tuple[Path, bool]:
    """The stored profile of the reference with ``fingerprint`` (built when absent): its path
    and whether it was built now. Features are part of the key: another selection of the
    same file is another profile. Errors name ``source`` (the dataset) when given."""
    target = stored_profile(data_dir, fingerprint, features)
    if target.is_file():
        return target, False
    columns = read_columns(path, features, label, source)
    try:
        profile = build_reference(fingerprint, columns)
    except AnalysisError as exc:
        raise ReferenceError(f"cannot profile the reference {source or path}: {exc}") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as out:
        json.dump(profile.as_dict(), out)
    os.replace(tmp, target)
    return target, True


def load_profile(path: Path) -> ReferenceProfile:
    try:
        return ReferenceProfile.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, AnalysisError) as exc:
        raise ReferenceError(f"cannot read the reference profile {path}: {exc}") from None


def _selection(features: Sequence[str]) -> str:
    import hashlib

    return hashlib.sha256("\n".join(sorted(features)).encode()).hexdigest()[:12]
