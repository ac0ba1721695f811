"""Metadata-only edits reach the registry in place, and never count as a new version:
no registry version, no gate re-run, no dependent re-applied."""

from __future__ import annotations

from pathlib import Path

from engine.plan.model import Action
from tests.release.test_release_safety import SPEC
from tests.support.harness import Workspace


def test_a_metadata_update_is_written_to_the_registry_object(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "spec").write(SPEC)
    assert ws.apply() is not None
    ws.write(
        {
            "models.yaml": """
                models:
                  m:
                    artifact: model.txt
                    owner: team-risk
                    description: the model, reviewed
                    labels: {tier: gold}
            """
        }
    )
    report = ws.apply()
    assert report is not None and report.ok
    obj = ws.registry_object("models", "m")
    assert obj is not None
    assert (obj["description"], obj["labels"], obj["owner"]) == (
        "the model, reviewed",
        {"tier": "gold"},
        "team-risk",
    )
    assert ws.registry_versions("models", "m") == [1]


def test_a_dataset_metadata_edit_reruns_no_gate_but_its_bytes_do(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "spec").write(SPEC)
    assert ws.apply() is not None
    runs = len(ws.gate_calls())
    ws.write(
        {
            "data.yaml": """
                datasets:
                  eval:
                    uri: data/eval.csv
                    owner: team-data
                    description: the held-out split
            """
        }
    )
    plan = ws.plan()
    assert [(c.address, c.action) for c in plan.actionable()] == [("datasets.eval", Action.UPDATE)]
    assert "evals.g" in plan.unchanged
    assert ws.apply() is not None and len(ws.gate_calls()) == runs
    ws.write({"data/eval.csv": "x,y\n1,0\n2,1\n9,9\n"})
    plan = ws.plan()
    assert {c.address: c.action for c in plan.actionable()}["evals.g"] is Action.RUN
