"""No function in the engine is rated above C by radon's cyclomatic complexity (issue 19).

radon ranks a block A (1-5), B (6-10), C (11-20), D (21-30), E (31-40) or F (41+); a D or
worse is split into well-named helpers. ``REMAINING`` lists the ones still waiting, each with
why: the test fails on a new offender and on an entry that no longer offends, so the list
only shrinks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import REPO, require_extra

#: radon is in the ``dev`` extra: skipped without it, a failure in CI (MLX_TEST_REQUIRE_EXTRAS)
complexity = require_extra("radon.complexity", "dev")
Class = require_extra("radon.visitors", "dev").Class

#: ``(path under the repo, qualified name) -> why it is still above C``.
REMAINING: dict[tuple[str, str], str] = {}

WORST = "C"


def _qualified(block: Any) -> str:
    """``Class.method`` for a method (radon's ``Function.classname``), else the name."""
    return f"{block.classname}.{block.name}" if block.classname else block.name


def offenders(root: Path = REPO / "engine", base: Path = REPO) -> dict[tuple[str, str], str]:
    """Every function and method under ``root`` ranked worse than ``WORST``, with its rank
    (what ``radon cc -n D`` lists), keyed by path relative to ``base`` and qualified name."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(base).as_posix()
        for block in complexity.cc_visit(path.read_text()):
            if isinstance(block, Class):
                continue  # its methods are visited on their own
            rank = complexity.cc_rank(block.complexity)
            if rank > WORST:
                out[(rel, _qualified(block))] = f"{rank} ({block.complexity})"
    return out


def test_no_engine_function_is_ranked_above_c() -> None:
    found = offenders()
    new = sorted(set(found) - set(REMAINING))
    assert not new, "split these into well-named helpers (radon cc -n D engine):\n" + "\n".join(
        f"  {path}: {name} {found[(path, name)]}" for path, name in new
    )


def test_remaining_entries_still_offend_and_say_why() -> None:
    """A function brought down leaves REMAINING with its fix."""
    fixed = sorted(set(REMAINING) - set(offenders()))
    assert not fixed, f"no longer above {WORST}, remove from REMAINING: {fixed}"
    assert all(why.strip() for why in REMAINING.values())


def test_the_check_catches_a_complex_function(tmp_path: Path) -> None:
    """The check itself fails on a deliberately tangled function (21 branches: rank D),
    a method included, and lets a plain one pass."""
    branches = "\n".join(f"    if x == {i}:\n        return {i}" for i in range(21))
    (tmp_path / "tangled.py").write_text(f"def tangled(x):\n{branches}\n    return -1\n")
    method = branches.replace("\n", "\n    ")
    (tmp_path / "k.py").write_text(f"class K:\n    def m(self, x):\n    {method}\n")
    (tmp_path / "plain.py").write_text("def plain(x):\n    return x\n")
    assert offenders(tmp_path, tmp_path) == {
        ("tangled.py", "tangled"): "D (22)",
        ("k.py", "K.m"): "D (22)",
    }
