"""engine/ imports no concrete provider: ruff bans every providers.* module but the contract
(pyproject's banned-api), and this test keeps that list complete and checks the code too."""

from __future__ import annotations

import ast
import tomllib

from tests.conftest import REPO


def _provider_modules() -> set[str]:
    out = set()
    for path in (REPO / "providers").iterdir():
        if path.name.startswith(("_", ".")) or path.name == "contract.py":
            continue
        if path.suffix == ".py" or (path / "__init__.py").exists():
            out.add(f"providers.{path.stem if path.suffix else path.name}")
    return out


def test_ruff_bans_every_provider_module_but_the_contract() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    banned = set(config["tool"]["ruff"]["lint"]["flake8-tidy-imports"]["banned-api"])
    assert _provider_modules() <= banned, _provider_modules() - banned
    assert "contract" not in banned


def test_engine_imports_only_the_contract() -> None:
    bad = []
    for path in (REPO / "engine").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                if name.startswith("providers") and name != "contract":
                    bad.append(f"{path.relative_to(REPO)}: {name}")
    assert not bad, bad
