"""`mlx refresh`: drift made behind mlx's back is found, recorded, alerted, shown and repaired."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import BASIC, run_mlx, write_spec
from tests.support.registry_rows import drop_record, read_record, write_record

EXTRA = {
    "rollout.yaml": """
        rollouts:
          fraud:
            subject: ${models.fraud}
            alias: production
            owner: team-ml
    """,
    "mlx.yaml": """
        mlx:
          drift_alerts: [alerts.oncall]
    """,
}


def versions(spec: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(spec / ".mlx" / "state.db") as conn:
        return list(conn.execute("SELECT serial, operation FROM mlx_state_versions ORDER BY 1"))


@pytest.fixture
def applied(tmp_path: Path) -> Path:
    spec = write_spec(tmp_path / "spec", {**BASIC, **EXTRA})
    assert run_mlx(["apply", "--yes"], spec).code == 0
    (spec / "model.bin").write_text("weights-v2")
    assert run_mlx(["apply", "--yes"], spec).code == 0
    return spec


def registry(spec: Path) -> Path:
    return spec / ".mlx" / "registry"


def test_no_drift_writes_nothing(applied: Path) -> None:
    result = run_mlx(["refresh", "--detailed-exitcode"], applied)
    assert result.code == 0, result
    assert "No drift" in result.out
    assert versions(applied) == [(1, "apply"), (2, "apply")]


def test_alias_moved_by_hand_is_found_alerted_and_repaired(applied: Path) -> None:
    data = read_record(registry(applied), "models", "fraud")
    data["object"]["aliases"]["production"] = 1  # somebody "rolled back" in the registry UI
    write_record(registry(applied), "models", "fraud", data)

    found = run_mlx(["refresh", "--detailed-exitcode"], applied)
    assert found.code == 2, found
    assert "rollouts.fraud has changed outside mlx" in found.out
    assert "released_version: 2 -> 1" in found.out
    assert versions(applied)[-1] == (3, "refresh")
    alerts = [json.loads(line) for line in (applied / "alerts.jsonl").read_text().splitlines()]
    assert [a["source"] for a in alerts] == ["rollouts.fraud"]
    assert alerts[0]["owner"] == "team-ml"

    plan = run_mlx(["plan", "--detailed-exitcode"], applied)
    assert plan.code == 2
    assert "Objects have changed outside of mlx (found by the last `mlx refresh`)" in plan.out
    assert "rollouts.fraud will be updated in place (changed outside mlx" in plan.out
    assert run_mlx(["apply", "--yes"], applied).code == 0
    assert read_record(registry(applied), "models", "fraud")["object"]["aliases"]["production"] == 2
    assert run_mlx(["refresh", "--detailed-exitcode"], applied).code == 0
    assert run_mlx(["plan", "--detailed-exitcode"], applied).code == 0


def test_deleted_version_and_edited_channel_are_found(applied: Path) -> None:
    data = read_record(registry(applied), "models", "fraud")
    del data["versions"]["2"]  # somebody deleted version 2 in the registry
    write_record(registry(applied), "models", "fraud", data)
    channel = applied / ".mlx" / "alerts" / "oncall.json"
    config = json.loads(channel.read_text())
    config["severity"] = "info"
    channel.write_text(json.dumps(config))
    result = run_mlx(["refresh", "--json"], applied)
    assert result.code == 0, result
    drift = {d["address"]: d for d in json.loads(result.out)["drift"]}
    # the alias pointed at the deleted version, so the rollout drifted too
    assert set(drift) == {"models.fraud", "alerts.oncall", "rollouts.fraud"}
    assert any("version 2 was deleted" in line for line in drift["models.fraud"]["differences"])
    assert drift["alerts.oncall"]["status"] == "drifted"
    assert run_mlx(["apply", "--yes"], applied).code == 0
    assert "2" in read_record(registry(applied), "models", "fraud")["versions"]
    assert run_mlx(["refresh", "--detailed-exitcode"], applied).code == 0


def test_plan_refresh_reads_live_without_recording(applied: Path) -> None:
    drop_record(registry(applied), "datasets", "train")
    plan = run_mlx(["plan", "--refresh"], applied)
    assert plan.code == 0, plan
    assert "datasets.train has been deleted outside mlx" in plan.out
    assert "datasets.train will be created (deleted outside mlx" in plan.out
    assert versions(applied) == [(1, "apply"), (2, "apply")]
    assert "Objects have changed" not in run_mlx(["plan"], applied).out  # nothing recorded


def test_local_bytes_changed_behind_mlx_are_drift(applied: Path) -> None:
    (applied / "data" / "train.csv").write_text("a,b\n1,2\n7,7\n")
    result = run_mlx(["refresh", "--detailed-exitcode"], applied)
    assert result.code == 2, result
    assert "datasets.train" in result.out and "bytes at data/train.csv changed" in result.out
    alerts = [json.loads(line) for line in (applied / "alerts.jsonl").read_text().splitlines()]
    assert [a["source"] for a in alerts] == ["datasets.train"]


def test_an_alert_that_cannot_be_delivered_is_a_warning_on_stderr(applied: Path) -> None:
    (applied / "alerts.jsonl").unlink(missing_ok=True)
    (applied / "alerts.jsonl").mkdir()  # the channel's file cannot be written
    obj = read_record(registry(applied), "models", "fraud")
    obj["object"]["aliases"]["production"] = 1
    write_record(registry(applied), "models", "fraud", obj)
    result = run_mlx(["refresh", "--detailed-exitcode"], applied)
    assert result.code == 2, result
    assert "Warning: could not alert alerts.oncall" in result.err
    assert "1 alert(s) could not be delivered" in result.err
    assert "could not alert" not in result.out
