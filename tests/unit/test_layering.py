"""The layers import one way: every import of every module (the ones inside functions too)
follows ``ALLOWED``, one table of the package edges docs/architecture.md draws.

Read bottom-up: ``common`` imports no other mlx package; each package may import those its row
names and nothing else. ``cli`` is the composition root, the only package that puts the
engine, the gateway and the controller together.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

ALLOWED: dict[str, frozenset[str]] = {
    "common": frozenset(),
    "specs": frozenset({"common"}),
    "contract": frozenset({"common", "specs"}),
    "analysis": frozenset({"common"}),
    "state": frozenset({"common", "specs", "contract"}),
    "inference": frozenset({"common", "contract"}),
    "dataplane": frozenset({"common", "specs", "contract", "state"}),
    "alerts": frozenset({"common", "contract"}),
    "controller": frozenset({"common", "specs", "contract", "analysis", "alerts"}),
    "readmodels": frozenset(
        {
            "common",
            "specs",
            "contract",
            "analysis",
            "state",
            "inference",
            "dataplane",
            "alerts",
            "controller",
        }
    ),
    "providers": frozenset(
        {"common", "specs", "contract", "analysis", "state", "inference", "dataplane"}
    ),
    "engine": frozenset(
        {"common", "specs", "contract", "analysis", "state", "alerts", "controller"}
    ),
    "gateway": frozenset({"common", "specs", "contract", "dataplane", "inference"}),
}
#: ``cli`` is the composition root: it may import every other package.
ALLOWED["cli"] = frozenset(ALLOWED)
#: ``providers.contract`` is a deprecated re-export of ``contract`` for plugins: nothing of
#: mlx's own imports it.
SHIMS = {"providers/contract.py"}
#: Edges that break the table today, each to be removed by the change that fixes it (issue 19);
#: the test fails when one is fixed and still listed, so this list only shrinks.
KNOWN: set[tuple[str, str]] = set()
PACKAGES = set(ALLOWED)


def _imports(path: Path) -> Iterator[tuple[str, int]]:
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if "." in node.module:
                yield node.module, node.lineno
            else:  # `from engine import session` imports engine.session
                for alias in node.names:
                    yield f"{node.module}.{alias.name}", node.lineno


def edges() -> Iterator[tuple[str, str, str, int]]:
    """(file, imported module, importing package, line) for every cross-package import."""
    for package in sorted(PACKAGES):
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if rel in SHIMS:
                continue
            for module, line in _imports(path):
                top = module.split(".")[0]
                if top in PACKAGES and top != package:
                    yield rel, module, package, line


def violations() -> set[tuple[str, str]]:
    out = set()
    for rel, module, package, _line in edges():
        top = module.split(".")[0]
        if top not in ALLOWED[package] or module.startswith("providers.contract"):
            out.add((rel, module if "." in module else top))
    return out


def test_every_top_level_package_has_a_row() -> None:
    on_disk = {p.name for p in REPO.iterdir() if (p / "__init__.py").exists()}
    assert on_disk - {"tests", "bench", "examples"} == PACKAGES


def test_the_table_is_acyclic_bottom_up() -> None:
    order: list[str] = []
    pending = dict(ALLOWED)
    while pending:
        ready = [p for p, deps in pending.items() if deps <= set(order)]
        assert ready, f"a cycle among {sorted(pending)}"
        order.extend(sorted(ready))
        for p in ready:
            del pending[p]


def test_every_import_follows_the_table() -> None:
    found = violations()
    new = sorted(found - KNOWN)
    assert not new, "imports the layer table does not allow:\n" + "\n".join(
        f"  {f}: {m}" for f, m in new
    )


def test_known_exceptions_are_still_there() -> None:
    """A fixed edge leaves KNOWN with its fix: the list of exceptions only shrinks."""
    fixed = sorted(KNOWN - violations())
    assert not fixed, f"no longer imported, remove from KNOWN: {fixed}"


@pytest.mark.parametrize(
    ("package", "source", "allowed"),
    [
        ("gateway", "from engine.session import Session\n", False),
        ("gateway", "def f():\n    import providers.local.registry\n", False),
        ("state", "from engine import plan\n", False),
        ("engine", "from providers.local.provider import LocalRegistryProvider\n", False),
        ("engine", "from contract import Provider\n", True),
        ("controller", "from engine.plan.model import Plan\n", False),
        ("common", "from specs.base import Resource\n", False),
        ("cli", "from gateway.app import build\n", True),
        ("alerts", "from engine.session import Session\n", False),
        ("gateway", "from alerts import step\n", False),
    ],
)
def test_a_forbidden_import_is_caught(
    tmp_path: Path, package: str, source: str, allowed: bool
) -> None:
    """The check itself fails on a deliberately added forbidden import, lazy ones included."""
    module = tmp_path / "probe.py"
    module.write_text(source)
    tops = {m.split(".")[0] for m, _ in _imports(module)} - {package}
    ok = all(t in ALLOWED[package] for t in tops if t in PACKAGES)
    assert ok is allowed


def _provider_modules() -> set[str]:
    out = set()
    for path in (REPO / "providers").iterdir():
        if path.name.startswith(("_", ".")) or path.name == "contract.py":
            continue
        if path.suffix == ".py" or (path / "__init__.py").exists():
            out.add(f"providers.{path.stem if path.suffix else path.name}")
    return out


def test_ruff_bans_every_provider_module_in_the_engine() -> None:
    """ruff says it in the editor too (pyproject's banned-api)."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    banned = set(config["tool"]["ruff"]["lint"]["flake8-tidy-imports"]["banned-api"])
    assert _provider_modules() <= banned, _provider_modules() - banned


def test_ruff_lets_no_other_package_import_a_provider() -> None:
    """No per-file ignore lifts the ban for a package of mlx's own besides providers/."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    ignores = config["tool"]["ruff"]["lint"]["per-file-ignores"]
    lifted = {glob.split("/")[0] for glob, codes in ignores.items() if "TID251" in codes}
    assert lifted & PACKAGES == {"providers"}, sorted(lifted & PACKAGES)
