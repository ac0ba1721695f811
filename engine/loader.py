"""Spec directory → ``SpecSet``: every file parsed, validated and merged.

All problems of one run are reported together. Files whose bytes were seen
before come from the parse cache; the rest are parsed (in parallel worker
processes when there is a lot to parse) and compiled, then cached.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.diagnostics import Diagnostic, MlxError, Source
from engine.parsecache import ParseCache
from engine.positions import locate

#: Uncached bytes above which parsing is spread over worker processes.
PARALLEL_PARSE_BYTES = 1_500_000


@dataclass(slots=True)
class Decl:
    """One declared resource, validated and normalized, references not yet resolved."""

    address: str
    section: str
    name: str
    file: str
    body: dict[str, Any]
    refs: list[tuple[tuple[str | int, ...], str]]
    #: (behaviour, metadata) hashes when they do not depend on the run (see engine.hashing).
    hashes: tuple[str, str] | None = None


@dataclass
class SpecSet:
    root: Path
    files: list[tuple[str, str]]  # (relative path, sha256)
    settings: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    environments: dict[str, dict[str, Any]] = field(default_factory=dict)
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    decls: dict[str, Decl] = field(default_factory=dict)
    #: Where each named setting (variables.x, providers.y) was defined.
    origins: dict[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """Identity of the spec files' bytes (a saved plan records it)."""
        h = hashlib.sha256()
        for rel, sha in self.files:
            h.update(f"{rel}\0{sha}\n".encode())
        return h.hexdigest()

    def source(self, address: str, *path: str | int, key: bool = True) -> Source:
        decl = self.decls.get(address)
        if decl is None:
            file = self.origins.get(address)
            if file is None:
                return Source("<spec>")
            section, name = address.split(".", 1)
            return locate(self.root, file, [section, name, *path], key=key)
        return locate(self.root, decl.file, [decl.section, decl.name, *path], key=key)


def discover(root: Path) -> list[Path]:
    if not root.is_dir():
        raise MlxError(f"spec directory {root} does not exist")
    files = sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if not files:
        raise MlxError(
            Diagnostic(
                f"no *.yaml or *.yml files in {root}",
                detail="Run mlx in a spec directory, or point at one with -C DIR.",
            )
        )
    return files


def _compile_one(root: Path, rel: str, text: str) -> tuple[dict[str, Any] | None, list[Diagnostic]]:
    from engine.compile import FileCompiler
    from engine.yamlio import parse

    data, diags = parse(text, rel, str(root))
    if diags:
        return None, diags
    compiler = FileCompiler(root, rel)
    compiled = compiler.compile(data)
    return (None, compiler.diags) if compiler.diags else (compiled, [])


def _compile_job(args: tuple[Path, str, str]) -> tuple[dict[str, Any] | None, list[Diagnostic]]:
    return _compile_one(*args)


def load(root: Path, cache_dir: Path | None = None) -> SpecSet:
    """Load every spec file of ``root``; raise ``MlxError`` with all problems found."""
    root = root.resolve()
    paths = discover(root)
    cache = ParseCache(cache_dir)
    compiled: dict[str, dict[str, Any]] = {}
    pending: list[tuple[Path, str, str]] = []
    files: list[tuple[str, str]] = []
    for path in paths:
        rel = path.name
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise MlxError(f"cannot read {path}: {exc.strerror}") from exc
        sha = hashlib.sha256(raw).hexdigest()
        files.append((rel, sha))
        hit = cache.get(sha)
        if hit is not None:
            compiled[rel] = hit
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MlxError(Diagnostic(f"{rel} is not UTF-8 text", Source(rel))) from exc
        pending.append((root, rel, text))

    diags: list[Diagnostic] = []
    shas = dict(files)
    for (_, rel, _), (result, found) in zip(pending, _run(pending), strict=True):
        diags.extend(found)
        if result is not None:
            compiled[rel] = result
            cache.put(shas[rel], result)
    if diags:
        raise MlxError(diags)
    return _merge(root, files, compiled)


def _run(jobs: list[tuple[Path, str, str]]) -> list[tuple[dict[str, Any] | None, list[Diagnostic]]]:
    size = sum(len(text) for _, _, text in jobs)
    if len(jobs) < 4 or size < PARALLEL_PARSE_BYTES:
        return [_compile_one(*job) for job in jobs]
    import multiprocessing
    import os

    workers = min(len(jobs), os.cpu_count() or 1)
    if workers < 2:
        return [_compile_one(*job) for job in jobs]
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        return list(pool.map(_compile_job, jobs, chunksize=max(1, len(jobs) // (workers * 2))))


def _merge(
    root: Path, files: list[tuple[str, str]], compiled: dict[str, dict[str, Any]]
) -> SpecSet:
    spec = SpecSet(root=root, files=files)
    diags: list[Diagnostic] = []
    settings_from: str | None = None
    for rel, _ in files:
        entry = compiled[rel]
        if entry.get("settings") is not None:
            if settings_from is not None:
                diags.append(
                    Diagnostic(
                        "the `mlx` settings block is defined in two files",
                        locate(root, rel, ["mlx"]),
                        related=(("first defined", locate(root, settings_from, ["mlx"])),),
                    )
                )
            settings_from = rel
            spec.settings = entry["settings"]
        for section in ("variables", "environments", "providers"):
            target = getattr(spec, section)
            for name, value in entry.get(section, {}).items():
                key = f"{section}.{name}"
                if key in spec.origins:
                    diags.append(_duplicate(root, key, spec.origins[key], rel))
                    continue
                spec.origins[key] = rel
                target[name] = value
        for section, name, body, refs, hashes in entry["resources"]:
            address = f"{section}.{name}"
            if address in spec.origins:
                diags.append(_duplicate(root, address, spec.origins[address], rel))
                continue
            spec.origins[address] = rel
            spec.decls[address] = Decl(
                address,
                section,
                name,
                rel,
                body,
                [(tuple(p), s) for p, s in refs],
                tuple(hashes) if hashes else None,  # type: ignore[arg-type]
            )
    if diags:
        raise MlxError(diags)
    return spec


def _duplicate(root: Path, address: str, first: str, second: str) -> Diagnostic:
    section, name = address.split(".", 1)
    return Diagnostic(
        f"{address} is defined twice (in {first} and {second})",
        locate(root, second, [section, name]),
        related=(("first defined", locate(root, first, [section, name])),),
    )
