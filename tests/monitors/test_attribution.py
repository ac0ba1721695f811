"""engine.monitors.attribution on a real SQLite state: a monitor's slices name the rollout
steps their version served in during the window, read from the rollout's recorded events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.monitors.attribution import attribute
from state.store import StateStore
from state.writes import RecordWrite


def _rollout(writer: Any, outputs: dict[str, Any], endpoint: str = "endpoints.web") -> None:
    writer.put(
        RecordWrite(
            address="rollouts.web", section="rollouts", name="web", provider="default:gateway",
            action="rollout", spec_hash="s", meta_hash="m", content_hash=None,
            attributes={"endpoint": "${" + endpoint + "}"},
            outputs={"endpoint": endpoint, **outputs}, dependencies=[],
        )
    )  # fmt: skip


def _pass(store: StateStore, outputs: dict[str, Any], endpoint: str = "endpoints.web") -> None:
    with store.writer("default", who="ctl", operation="rollout") as w:
        w.begin("rollout", actor="ctl")
        _rollout(w, outputs, endpoint)


def _step(version: str, step: int, weight: int, at: float) -> dict[str, Any]:
    return {"candidate_version": version, "step": step, "steps": 2, "weight": weight,
            "step_started_at": at}  # fmt: skip


def _run(since: float, until: float, endpoint: str = "web") -> dict[str, Any]:
    return {
        "state": "firing",
        "window": {"endpoint": endpoint, "since": since, "until": until},
        "slices": [
            {"variant": "stable", "version": "6", "breach": False},
            {"variant": "candidate", "version": "7", "breach": True},
        ],
    }


def test_the_candidate_slice_names_the_steps_of_its_window(tmp_path: Path) -> None:
    store = StateStore(f"sqlite:///{tmp_path}/state.db")
    _pass(store, _step("7", 0, 25, 100.0))
    _pass(store, _step("7", 1, 100, 200.0))
    reader = store.reader("default")

    got = attribute(reader, _run(150.0, 250.0))
    stable, candidate = got["slices"]
    assert "rollout_steps" not in stable  # stable's version is no candidate of the rollout
    assert [s["label"] for s in candidate["rollout_steps"]] == [
        "rollouts.web step 1/2 at 25 %",
        "rollouts.web step 2/2 at 100 %",
    ]
    only_first = attribute(reader, _run(120.0, 180.0))["slices"][1]["rollout_steps"]
    assert [(s["step"], s["weight"], s["from"], s["to"]) for s in only_first] == [
        (1, 25, 100.0, 200.0)
    ]


def test_nothing_is_added_for_another_endpoint_or_a_batch_run(tmp_path: Path) -> None:
    store = StateStore(f"sqlite:///{tmp_path}/state.db")
    _pass(store, _step("7", 0, 25, 100.0))
    reader = store.reader("default")
    other = attribute(reader, _run(150.0, 250.0, endpoint="api"))
    assert all("rollout_steps" not in s for s in other["slices"])
    batch = {"state": "ok", "window": {"dataset": "datasets.x"}, "slices": []}
    assert attribute(reader, batch) == batch
