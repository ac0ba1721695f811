"""The planner through the Python API (what the CLI calls)."""

from __future__ import annotations

from pathlib import Path

from engine import operations
from engine.plan.model import Action, Reason
from engine.session import Options, Session
from tests.conftest import BASIC, secret_spec, write_spec


def _plan(spec: Path, **env: str):  # type: ignore[no-untyped-def]
    return operations.plan(Session(Options(chdir=spec, environ=dict(env))))


def _apply(spec: Path) -> None:
    from engine.workflows.release import Delivery

    report = operations.apply(
        Session(Options(chdir=spec, environ={})), Delivery(echo=lambda _l: None)
    )
    assert report is not None and report.ok


def test_behaviour_metadata_and_content_are_told_apart(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, BASIC)
    assert [c.action for c in _plan(spec).changes] == [Action.CREATE] * 3
    _apply(spec)
    assert not _plan(spec).has_changes

    text = (spec / "models.yaml").read_text()
    (spec / "models.yaml").write_text(text.replace("fraud model", "the fraud model"))
    change = _plan(spec).changes[0]
    assert (change.address, change.reasons) == ("models.fraud", [Reason.METADATA_CHANGED])
    assert not change.changes_behaviour

    (spec / "models.yaml").write_text(text.replace("model.bin", "model2.bin"))
    (spec / "model2.bin").write_text("weights-v2")
    change = _plan(spec).changes[0]
    assert Reason.SPEC_CHANGED in change.reasons and Reason.CONTENT_CHANGED in change.reasons
    assert {f.path for f in change.fields} >= {"artifact", "version", "fingerprint"}


def test_dataset_bytes_flag_dependents_and_attributes_become_unknown(tmp_path: Path) -> None:
    files = dict(BASIC)
    files["alerts.yaml"] = """
        alerts:
          oncall:
            type: file
            path: alerts.jsonl
            description: "serving ${models.fraud.version} trained on ${datasets.train.revision}"
    """
    spec = write_spec(tmp_path, files)
    _apply(spec)
    assert not _plan(spec).has_changes
    (spec / "data" / "train.csv").write_text("a,b\n1,2\n3,4\n")
    plan = _plan(spec)
    by = {c.address: c for c in plan.changes}
    assert by["datasets.train"].reasons == [Reason.CONTENT_CHANGED]
    assert by["models.fraud"].action is Action.NOOP
    assert by["models.fraud"].flagged_by == ["datasets.train"]
    alert = by["alerts.oncall"]
    assert alert.action is Action.UPDATE and alert.reasons == [Reason.METADATA_CHANGED]
    assert alert.after["description"] == {"$unknown": True}


def test_secret_is_a_digest_everywhere_in_the_plan(tmp_path: Path) -> None:
    spec = secret_spec(tmp_path, "MLX_SECRET")
    plan = _plan(spec, MLX_SECRET="hunter2")
    dumped = plan.model_dump_json()
    assert "hunter2" not in dumped
    alert = next(c for c in plan.changes if c.address == "alerts.oncall")
    assert set(alert.after["url"]) == {"$sensitive"}
