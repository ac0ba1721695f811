"""Issue 8, promises 4, 5 and 7: a failed update loses nothing and is retried (never a
replacement), deletes and rollbacks across deletes apply, refresh sees local bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.plan.model import Action, Reason
from tests.conftest import BASIC
from tests.support.harness import Workspace

FLAKY = """
providers:
  flaky:
    type: python
    factory: tests.support.fake_providers:FlakyProvider
    config: {fail: [%s]}
"""


def _flaky_spec(ws: Workspace, failing: str) -> None:
    models = BASIC["models.yaml"].replace(
        "owner: team-ml", "owner: team-ml\n            provider: flaky"
    )
    ws.write({"models.yaml": models, "providers.yaml": FLAKY % failing})


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    ws = Workspace(tmp_path / "spec").write(BASIC)
    _flaky_spec(ws, "")
    report = ws.apply()
    assert report is not None and report.ok, ws.output
    return ws


def test_a_failed_update_keeps_the_record_and_the_next_apply_retries_it(ws: Workspace) -> None:
    ws.write({"model.bin": "weights-v2"})
    assert ws.apply() is not None and ws.registry_versions("models", "fraud") == [1, 2]
    before = ws.outputs("models.fraud")
    # the registry is unreachable during the next update
    ws.write({"model.bin": "weights-v3"})
    _flaky_spec(ws, "fraud")
    report = ws.apply()
    assert report is not None and not report.ok
    assert ws.statuses()["models.fraud"] == "ok", "a failed update must not taint"
    assert ws.outputs("models.fraud") == before
    events = ws.sql(
        "SELECT action, status, error FROM mlx_resource_events "
        "WHERE address = 'models.fraud' ORDER BY id DESC LIMIT 1"
    )
    assert events[0][:2] == ("update", "error") and "HTTP 503" in events[0][2]
    # the next plan retries the update: no replacement, nothing destroyed
    plan = ws.plan()
    change = next(c for c in plan.changes if c.address == "models.fraud")
    assert change.action is Action.UPDATE and Reason.CONTENT_CHANGED in change.reasons
    assert plan.counts()["destroy"] == 0
    _flaky_spec(ws, "")
    report = ws.apply()
    assert report is not None and report.ok, ws.output
    assert ws.registry_versions("models", "fraud") == [1, 2, 3]
    assert ws.outputs("models.fraud")["version"] == 3


def test_a_forced_replacement_of_a_registry_keeps_every_version(ws: Workspace) -> None:
    ws.write({"model.bin": "weights-v2"})
    assert ws.apply() is not None
    plan = ws.plan(replace=["models.fraud"])
    change = next(c for c in plan.changes if c.address == "models.fraud")
    assert change.action is Action.REPLACE
    assert any("nothing is deleted" in d for d in change.details), change.details
    report = ws.apply(replace=["models.fraud"])
    assert report is not None and report.ok
    assert report.summary()["destroyed"] == 0
    assert ws.registry_versions("models", "fraud") == [1, 2]
    assert ws.registry_object("models", "fraud") is not None


def test_removing_a_resource_destroys_it_and_its_object(ws: Workspace) -> None:
    channel = ws.root / ".mlx" / "alerts" / "oncall.json"
    assert channel.is_file()  # the channel's record, which its provider owns
    ws.remove("alerts.yaml")
    plan = ws.plan()
    assert plan.counts() == {"add": 0, "change": 0, "destroy": 1, "run": 0}
    report = ws.apply()
    assert report is not None and report.ok, ws.output
    assert report.summary()["destroyed"] == 1
    assert "alerts.oncall" not in ws.statuses()
    assert not channel.exists(), "an applied delete must delete the object in its provider"
    assert not ws.plan().has_changes


def test_removing_a_resource_with_dependents_deletes_dependents_first(ws: Workspace) -> None:
    ws.remove("data.yaml", "models.yaml")
    report = ws.apply()
    assert report is not None and report.ok, ws.output
    order = [line.split(":")[0] for line in ws.lines if line.endswith("Destroying...")]
    assert order == ["models.fraud", "datasets.train"]
    assert set(ws.statuses()) == {"alerts.oncall"}
    # the registry keeps the versions: a rollback across the delete brings them back
    assert ws.registry_versions("models", "fraud") == [1]
    report = ws.rollback()
    assert report is not None and report.ok, ws.output
    assert set(ws.statuses()) == {"alerts.oncall", "datasets.train", "models.fraud"}
    assert ws.outputs("models.fraud")["version"] == 1


def test_rollback_to_a_version_with_fewer_resources_deletes_the_rest(ws: Workspace) -> None:
    ws.write(
        {
            "more.yaml": """
                alerts:
                  pager:
                    type: file
                    path: .mlx/pager.jsonl
            """
        }
    )
    report = ws.apply()
    assert report is not None and report.ok and "alerts.pager" in ws.statuses()
    report = ws.rollback()
    assert report is not None and report.ok, ws.output
    assert "alerts.pager" not in ws.statuses()


def test_refresh_reports_local_bytes_changed_behind_mlx(ws: Workspace) -> None:
    assert ws.refresh() == []
    (ws.root / "data" / "train.csv").write_text("a,b\n1,2\n3,4\n")
    found = ws.refresh()
    assert [(d.address, d.status) for d in found] == [("datasets.train", "drifted")]
    assert any("data/train.csv" in line for line in found[0].differences), found[0].differences
    assert ws.statuses()["datasets.train"] == "drifted"
    # the repair is the content change itself: a new revision, and what depends on it re-runs
    plan = ws.plan()
    change = next(c for c in plan.changes if c.address == "datasets.train")
    assert Reason.CONTENT_CHANGED in change.reasons
    report = ws.apply()
    assert report is not None and report.ok
    assert ws.statuses()["datasets.train"] == "ok"
    assert ws.refresh() == []


def test_a_record_that_cannot_be_committed_fails_its_resource_and_blocks_its_dependents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The applier hands each record to the committing thread and goes on; when that
    commit fails, the resource is an error (not "complete"), and nothing that depends on
    it starts, as when the write failed in place."""
    from concurrent.futures import Future

    from state.store import StateWriter
    from state.writes import RecordWrite

    put = StateWriter.put

    def failing_put(self: StateWriter, write: RecordWrite, wait: bool = True) -> Future[None]:
        if write.address != "datasets.train" or write.status != "ok":
            return put(self, write, wait=wait)
        lost: Future[None] = Future()
        lost.set_exception(OSError("disk I/O error"))
        return lost

    ws = Workspace(tmp_path / "spec").write(BASIC)
    monkeypatch.setattr(StateWriter, "put", failing_put)
    report = ws.apply()
    assert report is not None and not report.ok
    outcomes = {o.address: o for o in report.outcomes}
    assert outcomes["datasets.train"].status == "error"
    assert "disk I/O error" in (outcomes["datasets.train"].message or "")
    assert outcomes["models.fraud"].status == "skipped", "a dependent waits for the record"
    assert "datasets.train: Creation complete" not in ws.output
    assert ws.statuses().get("datasets.train") == "tainted"  # the failure itself is recorded
    monkeypatch.undo()
    assert ws.apply() is not None and ws.plan().counts()["add"] == 0
