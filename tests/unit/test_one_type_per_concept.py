"""One type per concept (issue 19): a registered version, a role, a traffic split and an alert
message are each defined once, in ``contract``; the statistics' input has the fields a serving
provider reports (docs/decisions.md: why those two stay two types)."""

from __future__ import annotations

import ast
from dataclasses import MISSING, fields

from analysis.canary import VariantStats
from contract import VariantMetrics
from tests.conftest import REPO
from tests.unit.test_layering import PACKAGES

#: concept -> the one module that defines it
ONE_HOME = {
    "VersionRef": "contract/versions.py",
    "Role": "contract/__init__.py",
    "Traffic": "contract/__init__.py",
    "AlertMessage": "contract/__init__.py",
    "Alert": None,  # the controller's copy of AlertMessage: gone
}


def _class_definitions() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for package in sorted(PACKAGES):
        for path in sorted((REPO / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and node.name in ONE_HOME:
                    found.setdefault(node.name, []).append(path.relative_to(REPO).as_posix())
    return found


def test_each_concept_is_defined_once_in_contract() -> None:
    found = _class_definitions()
    want = {name: [home] for name, home in ONE_HOME.items() if home is not None}
    assert found == want


def test_the_statistics_read_every_field_a_serving_provider_reports() -> None:
    """``VariantStats.from_metrics`` copies ``VariantMetrics`` field by field: the same names,
    in the same order, with the same defaults (the stats require the two counts)."""
    reported = [(f.name, f.default) for f in fields(VariantMetrics)]
    checked = [(f.name, f.default) for f in fields(VariantStats)]
    required = {"requests", "server_errors"}
    assert [n for n, _ in reported] == [n for n, _ in checked]
    for (name, default), (_, stats_default) in zip(reported, checked, strict=True):
        assert stats_default == (MISSING if name in required else default), name
    metrics = VariantMetrics(10, 1, 5.0, 9.0, 12.0, 0.5, 2, 0.75, 3)
    stats = VariantStats.from_metrics(metrics)
    assert [getattr(stats, f.name) for f in fields(VariantStats)] == [
        getattr(metrics, f.name) for f in fields(VariantMetrics)
    ]
