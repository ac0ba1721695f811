"""The plan memo: a converged spec is not planned again while none of its inputs changed.

A no-op plan is a pure function of: mlx's own code, the spec files' bytes, the
state's lineage and serial, the environment values the spec reads, and the
local files the providers looked at while planning (artifacts, datasets,
templates). When a full plan finds nothing to do, all of these are recorded;
the next ``mlx plan`` checks them — hashing the spec files, one SQLite query,
one ``stat`` per content file — and, if all hold, prints the recorded result
without loading the planner at all (make and bazel do the same with their
inputs). Anything else — a provider that asked a server, PostgreSQL state,
``--target`` — always takes the full path.

This module imports only the standard library: that is the point of it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

FORMAT = 1
#: Files changed this close to when the memo was written are not trusted (racy stat).
RACY_NS = 2_000_000_000
_PACKAGES = ("common", "contract", "engine", "specs", "state", "providers", "controller")


def memo_file(data_dir: Path, workspace: str) -> Path:
    return data_dir / "cache" / f"plan-memo-{workspace}.json"


def _stamp(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _code_stamp() -> str:
    base = Path(__file__).resolve().parents[2]  # the directory holding the packages
    h = hashlib.sha256(sys.version.encode())
    for package in _PACKAGES:
        for dirpath, dirnames, filenames in os.walk(base / package):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(filenames):
                if name.endswith(".py"):
                    full = os.path.join(dirpath, name)
                    h.update(f"{full}:{_stamp(full)}".encode())
    return h.hexdigest()


def _spec_files(root: Path) -> list[list[str]]:
    out = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.is_file() and entry.name.endswith((".yaml", ".yml")):
            with open(entry.path, "rb") as fh:
                out.append([entry.name, hashlib.sha256(fh.read()).hexdigest()])
    return out


def _environment(environ: Mapping[str, str], names: Iterable[str], salt: str) -> str:
    """A keyed digest of every environment value that can change the plan."""
    wanted = sorted(set(names) | {k for k in environ if k.startswith("MLX_VAR_")})
    material = json.dumps([[n, environ.get(n)] for n in wanted])
    return hmac.new(salt.encode(), material.encode(), hashlib.sha256).hexdigest()


def _sqlite_path(url: str) -> str | None:
    prefix = "sqlite:///"
    return url[len(prefix) :] if url.startswith(prefix) else None


def _state_position(url: str, workspace: str) -> list[Any] | None:
    path = _sqlite_path(url)
    if path is None or not os.path.exists(path):
        return None
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute(
                "SELECT lineage, serial FROM mlx_workspaces WHERE name = ?", (workspace,)
            ).fetchone()
    except sqlite3.Error:
        return None
    return list(row) if row else None


def lookup(
    root: Path,
    workspace: str,
    state_option: str | None,
    environ: Mapping[str, str],
) -> str | None:
    """The recorded output of a converged plan, if nothing it depends on changed."""
    path = memo_file(root / ".mlx", workspace)
    try:
        memo = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    try:
        if memo.get("format") != FORMAT:
            return None
        if memo["state_option"] != [state_option, environ.get("MLX_STATE")]:
            return None
        if _environment(environ, memo["env_names"], memo["salt"]) != memo["environment"]:
            return None
        if _code_stamp() != memo["code"]:
            return None
        if _spec_files(root) != memo["spec_files"]:
            return None
        if _state_position(memo["state_url"], workspace) != memo["state"]:
            return None
        written = int(memo["written_ns"])
        for file, stamp in memo["files"]:
            now = _stamp(file)
            if now is None or now != stamp or written - now[2] <= RACY_NS:
                return None
    except (KeyError, TypeError, IndexError):
        return None
    return str(memo["output"])


def store(
    *,
    root: Path,
    workspace: str,
    state_option: str | None,
    state_url: str,
    environ: Mapping[str, str],
    env_names: Iterable[str],
    files: Iterable[str],
    output: str,
) -> None:
    """Record a converged plan. Best effort: a read-only spec dir simply has no memo."""
    state = _state_position(state_url, workspace)
    if state is None:
        return
    salt = secrets.token_hex(16)
    names = sorted(set(env_names))
    memo = {
        "format": FORMAT,
        "written_ns": time.time_ns(),
        "state_option": [state_option, environ.get("MLX_STATE")],
        "state_url": state_url,
        "state": state,
        "code": _code_stamp(),
        "spec_files": _spec_files(root),
        "salt": salt,
        "env_names": names,
        "environment": _environment(environ, names, salt),
        "files": [[f, s] for f in sorted(set(files)) if (s := _stamp(f)) is not None],
        "output": output,
    }
    path = memo_file(root / ".mlx", workspace)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(memo))
        os.replace(tmp, path)
    except OSError:
        pass
