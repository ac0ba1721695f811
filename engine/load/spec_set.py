"""Spec directory → ``SpecSet``: every file parsed, validated and merged.

All problems of one run are reported together. Files whose bytes were seen
before come from the parse cache; the rest are parsed (in parallel worker
processes when there is a lot to parse) and compiled, then cached.
"""

from __future__ import annotations

import hashlib
import os
import stat
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.diagnostics import Diagnostic, MlxError, Source
from engine.load.limits import Limits, too_big
from engine.load.parse_cache import ParseCache
from engine.load.positions import locate

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
    #: (behaviour, metadata) hashes when they do not depend on the run (see engine.plan.hashes).
    hashes: tuple[str, str] | None = None
    #: Each of ``refs`` already parsed (``engine.load.references.encode``), when the loader did it.
    parsed: list[Any] | None = None


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
    """The spec files of ``root``: regular files, symlinks only to files inside ``root``.

    A spec file symlinked to /etc/shadow would otherwise be read, and its lines quoted
    in the "invalid YAML" diagnostic; a FIFO named x.yaml would hang the read.
    """
    if not root.is_dir():
        raise MlxError(f"spec directory {root} does not exist")
    files: list[Path] = []
    diags: list[Diagnostic] = []
    real_root = os.path.realpath(root)
    for p in sorted(root.iterdir()):
        if p.suffix not in (".yaml", ".yml"):
            continue
        try:
            st = p.stat()
        except OSError:
            continue  # a dangling symlink: not a spec file
        if stat.S_ISDIR(st.st_mode):
            continue
        real = os.path.realpath(p)
        if not real.startswith(real_root.rstrip(os.sep) + os.sep):
            diags.append(
                Diagnostic(
                    f"{p.name} is a symlink to {real}, outside the spec directory: "
                    "mlx reads spec files only from inside it",
                    Source(p.name),
                )
            )
        elif not stat.S_ISREG(st.st_mode):
            diags.append(Diagnostic(f"{p.name} is not a regular file", Source(p.name)))
        else:
            files.append(p)
    if diags:
        raise MlxError(diags)
    if not files:
        raise MlxError(
            Diagnostic(
                f"no *.yaml or *.yml files in {root}",
                detail="Run mlx in a spec directory, or point at one with -C DIR.",
            )
        )
    return files


def _compile_one(root: Path, rel: str, text: str) -> tuple[dict[str, Any] | None, list[Diagnostic]]:
    from engine.load.validate_file import FileCompiler
    from engine.load.yaml_parse import parse

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
    return begin(root, cache_dir).result()


class PendingLoad:
    """A load under way: uncached files are being parsed by worker processes.

    ``begin`` returns at once, so the caller can import the planner and open the
    state meanwhile (on a cold start that overlaps ~0.8 s of imports with parsing).
    """

    def __init__(self, root: Path, cache_dir: Path | None):
        self.root = root.resolve()
        self.limits = Limits.from_environ()
        self.cache = ParseCache(cache_dir, self.limits.key)
        self.files: list[tuple[str, str]] = []
        self.compiled: dict[str, dict[str, Any]] = {}
        self.jobs: list[tuple[Path, str, str]] = []
        self._pool: Any = None
        self._futures: list[Any] = []
        self._done: SpecSet | None = None
        for path in discover(self.root):
            self._read(path)
        if self._parallel():
            self._start_pool()

    def _read(self, path: Path) -> None:
        rel = path.name
        limit = self.limits.file_bytes
        try:
            size = path.stat().st_size
            if size <= limit:
                with path.open("rb") as fh:
                    raw = fh.read(limit + 1)  # it may have grown since
                size = len(raw)
        except OSError as exc:
            raise MlxError(f"cannot read {path}: {exc.strerror}") from exc
        if size > limit:
            raise MlxError(too_big(rel, size, self.limits, str(self.root)))
        sha = hashlib.sha256(raw).hexdigest()
        self.files.append((rel, sha))
        hit = self.cache.get(sha)
        if hit is not None:
            self.compiled[rel] = hit
            return
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MlxError(Diagnostic(f"{rel} is not UTF-8 text", Source(rel))) from exc
        self.jobs.append((self.root, rel, text))

    def _parallel(self) -> bool:
        size = sum(len(text) for _, _, text in self.jobs)
        return len(self.jobs) >= 4 and size >= PARALLEL_PARSE_BYTES and (os.cpu_count() or 1) > 1

    def _start_pool(self) -> None:
        import multiprocessing

        workers = min(len(self.jobs), os.cpu_count() or 1)
        self._pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("fork")
        )
        # biggest files first, so the last worker does not start a big one alone
        order = sorted(range(len(self.jobs)), key=lambda i: -len(self.jobs[i][2]))
        futures: dict[int, Any] = {i: self._pool.submit(_compile_job, self.jobs[i]) for i in order}
        self._futures = [futures[i] for i in range(len(self.jobs))]

    def result(self) -> SpecSet:
        if self._done is not None:
            return self._done
        if self._pool is not None:
            try:
                results = [f.result() for f in self._futures]
            finally:
                self._pool.shutdown()
                self._pool = None
        else:
            results = [_compile_one(*job) for job in self.jobs]
        diags: list[Diagnostic] = []
        shas = dict(self.files)
        for (_, rel, _), (compiled, found) in zip(self.jobs, results, strict=True):
            diags.extend(found)
            if compiled is not None:
                self.compiled[rel] = compiled
                self.cache.put(shas[rel], compiled)
        if diags:
            raise MlxError(diags)
        self._done = _merge(self.root, self.files, self.compiled)
        return self._done


def begin(root: Path, cache_dir: Path | None = None) -> PendingLoad:
    return PendingLoad(root, cache_dir)


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
                [(tuple(r[0]), r[1]) for r in refs],
                tuple(hashes) if hashes else None,
                [r[2] for r in refs],
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
