"""A monitor's reference profile, built once per reference fingerprint and kept.

The profile (``analysis.drift.ReferenceProfile``: frozen bin edges, top-K categories,
reference counts) is a JSON file under the data directory,
``<data_dir>/monitors/profiles/<fingerprint>.json``, written atomically; the monitor's
outputs record the fingerprint and that path. A second monitor, or an update, over the same
reference reads the file instead of re-reading the data (Evidently recomputes it every run,
evidently#506). The reference is read once through DuckDB (CSV or Parquet); its columns are
the monitor's ``features``, or every column but the ``label``. Numeric columns are profiled
inside DuckDB (:mod:`providers.monitor.reference_duckdb`: no row reaches Python, so a
reference of any length profiles in about one column's memory); the others are read, column
by column, into the in-memory builder.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from analysis.base import AnalysisError
from analysis.drift import FeatureProfile, ReferenceProfile, build_feature
from inference.drift_files import source_sql


class ReferenceError(Exception):
    """The reference cannot be read or profiled: the monitor's state is ``error``."""


def profile_path(data_dir: Path, fingerprint: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in fingerprint)
    return data_dir / "monitors" / "profiles" / f"{safe}.json"


def build_profile(
    fingerprint: str,
    path: str | Path,
    features: Sequence[str] = (),
    label: str | None = None,
    source: str | None = None,
) -> ReferenceProfile:
    """Profile the reference at ``path``: numeric columns in DuckDB, the others in memory one
    at a time (never the whole table as Python rows). Errors name ``source`` (the dataset's
    address) when given, else ``path``; a feature the file lacks is named with the columns it
    has (a prediction-drift monitor's default column ``prediction`` is the usual miss)."""
    import duckdb

    from providers.monitor.reference_duckdb import in_engine, profile_numeric

    where = source or str(path)
    try:
        source = source_sql(path)
        con = duckdb.connect()
        try:
            described = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
            types = {str(r[0]): str(r[1]) for r in described}
            chosen = _chosen(where, list(types), features, label)
            (rows,) = con.execute(f"SELECT count(*) FROM {source}").fetchall()[0]
            numeric = [c for c in chosen if in_engine(types[c])]
            profiled: dict[str, FeatureProfile] = dict(
                profile_numeric(con, source, str(path), numeric, rows)
            )
            for name in chosen:
                if name not in profiled:
                    column = [r[0] for r in con.execute(f"SELECT {_ident(name)} FROM {source}")
                              .fetchall()]  # fmt: skip
                    profiled[name] = build_feature(name, column)
        finally:
            con.close()
    except (duckdb.Error, ValueError, OSError) as exc:
        raise ReferenceError(f"cannot read the reference {where}: {exc}") from None
    return ReferenceProfile(fingerprint, rows, {name: profiled[name] for name in chosen})


def _chosen(where: str, names: list[str], features: Sequence[str], label: str | None) -> list[str]:
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
    return chosen


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


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
    try:
        profile = build_profile(fingerprint, path, features, label, source)
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
