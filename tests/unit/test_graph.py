"""engine.load.graph: references checked, cycles named with their places, dot and mermaid."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.diagnostics import MlxError
from engine.load.graph import build, to_dot, to_mermaid
from engine.load.spec_set import load
from tests.conftest import write_spec

BASE = {
    "a.yaml": "datasets:\n  d:\n    uri: d.csv\n    owner: t\n",
    "b.yaml": (
        'models:\n  m:\n    artifact: m.bin\n    owner: t\n    lineage: {data: ["${datasets.d}"]}\n'
    ),
}


def test_edges_follow_references_and_depends_on(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        {
            **BASE,
            "c.yaml": "alerts:\n  x:\n    type: file\n    path: p\n    depends_on: [models.m]\n",
        },
    )
    g = build(load(spec))
    assert set(g.graph.edges) == {("datasets.d", "models.m"), ("models.m", "alerts.x")}
    assert g.order.index("datasets.d") < g.order.index("models.m") < g.order.index("alerts.x")
    assert '"datasets.d" -> "models.m";' in to_dot(g.graph)
    assert "datasets__d --> models__m" in to_mermaid(g.graph)


def test_cycle_names_every_address_and_where_each_edge_was_written(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        {
            **BASE,
            "a.yaml": "datasets:\n  d:\n    uri: d.csv\n    owner: t\n    depends_on: [alerts.x]\n",
            "c.yaml": "alerts:\n  x:\n    type: file\n    path: p\n    depends_on: [models.m]\n",
        },
    )
    with pytest.raises(MlxError) as err:
        build(load(spec))
    diag = err.value.diagnostics[0]
    assert diag.summary.startswith("dependency cycle: ")
    for address in ("datasets.d", "models.m", "alerts.x"):
        assert address in diag.summary
    places = {str(src) for _, src in diag.related}
    assert {"a.yaml:5:18", "b.yaml:5:22", "c.yaml:5:18"} <= places


def test_ref_field_must_point_at_the_right_kind(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        {
            **BASE,
            "e.yaml": (
                "evals:\n  g:\n    subject: ${datasets.d}\n"
                "    dataset: ${datasets.d}\n    label: y\n"
            ),
        },
    )
    with pytest.raises(MlxError, match="`subject` must reference models or prompts, not datasets"):
        build(load(spec))


RELEASE = {
    "m.yaml": "models:\n  m:\n    artifact: m.bin\n    owner: t\n",
    "e.yaml": "endpoints:\n  e:\n    serves: ${models.m}\n    owner: t\n    requires: []\n",
}


def test_a_release_runs_after_the_gates_its_requires_leaves_out(tmp_path: Path) -> None:
    """Issue 18, item 17: ordering only, so their verdict in the same apply is seen."""
    gate = "evals:\n  g:\n    subject: ${models.m}\n    cases: c.yaml\n"
    g = build(load(write_spec(tmp_path, {**RELEASE, "g.yaml": gate})))
    assert ("evals.g", "endpoints.e") in g.graph.edges
    assert g.ordering == {("evals.g", "endpoints.e")}
    assert g.order.index("evals.g") < g.order.index("endpoints.e")
    assert ("evals.g", "endpoints.e") not in g.dependency_view().edges


def test_a_gate_that_comes_after_the_release_it_skips_makes_no_cycle(tmp_path: Path) -> None:
    """A smoke gate judging what the endpoint deployed depends on it: no edge back."""
    gate = (
        "evals:\n  smoke:\n    subject: ${models.m}\n    depends_on: [endpoints.e]\n"
        "    cases: c.yaml\n"
    )
    g = build(load(write_spec(tmp_path, {**RELEASE, "g.yaml": gate})))
    assert g.ordering == frozenset()
    assert g.order.index("endpoints.e") < g.order.index("evals.smoke")
