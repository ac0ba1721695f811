"""Read and edit the local registry's records with sqlite3 directly, as someone working
behind mlx's back would (the registry keeps one row per object in ``objects.db``)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any


def _db(root: Path) -> sqlite3.Connection:
    path = root / "objects.db"
    assert path.exists(), f"no registry database at {path}"
    return sqlite3.connect(path, isolation_level=None)


def find_record(root: Path, section: str, name: str, env: str = "default") -> dict[str, Any] | None:
    """The whole record of ``section.name`` (``{"object": …, "versions": {"1": …}}``), or
    ``None`` when the registry has none."""
    if not (root / "objects.db").exists():
        return None
    with _db(root) as conn:
        row = conn.execute(
            "SELECT data FROM objects WHERE namespace = ? AND section = ? AND name = ?",
            (env, section, name),
        ).fetchone()
    if row is None:
        return None
    data: dict[str, Any] = json.loads(row[0])
    return data


def read_record(root: Path, section: str, name: str, env: str = "default") -> dict[str, Any]:
    """The whole record of ``section.name``, which must be there."""
    data = find_record(root, section, name, env)
    assert data is not None, f"{section}.{name} is not in the registry at {root}"
    return data


def write_record(
    root: Path, section: str, name: str, data: dict[str, Any], env: str = "default"
) -> None:
    with _db(root) as conn:
        conn.execute(
            "UPDATE objects SET data = ? WHERE namespace = ? AND section = ? AND name = ?",
            (json.dumps(data), env, section, name),
        )


def drop_record(root: Path, section: str, name: str, env: str = "default") -> None:
    """Delete the object and every version record (its blobs stay)."""
    with _db(root) as conn:
        conn.execute(
            "DELETE FROM objects WHERE namespace = ? AND section = ? AND name = ?",
            (env, section, name),
        )


def production(spec: Path, section: str, name: str) -> int | None:
    """The version a spec dir's embedded registry gives users (its ``production`` alias)."""
    data = read_record(spec / ".mlx" / "registry", section, name)
    alias: int | None = data["object"]["aliases"].get("production")
    return alias
