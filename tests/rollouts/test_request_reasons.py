"""`mlx rollout promote|abort|retry` through the real `mlx` command: each writes a state
version with its actor and its reason (`--reason`, or who did it), and `mlx history`, `mlx
show rollouts.NAME` and `mlx rollout status NAME --json` all tell it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_mlx
from tests.rollouts.test_cli import _spec

pytestmark = pytest.mark.slow


def _as(actor: str) -> dict[str, str]:
    return {"MLX_ACTOR": actor}


def _request(spec: Path, actor: str, *args: str) -> dict[str, Any]:
    """Run `mlx rollout ARGS --json` as ``actor``; its JSON result."""
    ran = run_mlx(["rollout", *args, "--json"], spec, env=_as(actor))
    assert ran.code == 0, ran
    return dict(json.loads(ran.out))


def _version(spec: Path, operation: str) -> dict[str, Any]:
    """The newest state version of ``operation`` (`mlx history --json`)."""
    versions = json.loads(run_mlx(["history", "--json"], spec).out)
    return [v for v in versions if v["operation"] == operation][-1]


def _notes(spec: Path) -> list[tuple[str, str | None]]:
    """The rollout's recorded history as `mlx rollout status --json` lists it."""
    status = json.loads(run_mlx(["rollout", "status", "m", "--json"], spec).out)
    return [(h["action"], h["note"]) for h in status["history"]]


def test_promote_abort_and_retry_record_who_and_why(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "manual", "manual")
    assert run_mlx(["apply", "--yes"], spec).code == 0  # the canary waits at step 1

    promoted = _request(spec, "alice", "promote", "m", "--reason", "p95 flat at 10%")
    assert promoted["reason"] == "p95 flat at 10%" and promoted["phase"] == "paused"
    assert promoted["events"][0] == "promoted by alice: p95 flat at 10%", promoted
    version = _version(spec, "rollout-promote")
    assert version["actor"] == "alice"
    assert version["summary"]["reason"] == "p95 flat at 10%"
    assert version["summary"]["request"] == "promote"
    assert version["message"].startswith("promoted by alice: p95 flat at 10%")

    aborted = _request(spec, "bob", "abort", "m", "--reason", "support tickets doubled")
    assert aborted["phase"] == "aborted" and aborted["reason"] == "support tickets doubled"
    # the rollout's own message says who and why (what `mlx rollout status` shows as "now:")
    assert aborted["message"] == "aborted: requested by bob: support tickets doubled", aborted
    status = run_mlx(["rollout", "status", "m"], spec).out
    assert "requested by bob: support tickets doubled" in status, status
    version = _version(spec, "rollout-abort")
    assert version["actor"] == "bob" and version["summary"]["reason"] == "support tickets doubled"

    retried = _request(spec, "carol", "retry", "m", "--reason", "ticket spike was unrelated")
    assert retried["phase"] == "paused" and retried["waiting"] == "promote", retried
    assert retried["events"][0] == "retried by carol: ticket spike was unrelated"
    assert "retried" not in retried["events"], "the bare controller event is the same line"
    version = _version(spec, "rollout-retry")
    assert version["actor"] == "carol"
    assert version["summary"]["reason"] == "ticket spike was unrelated"

    history = run_mlx(["history"], spec).out
    for line in (
        "promoted by alice: p95 flat at 10%",
        "aborted by bob: support tickets doubled",
        "retried by carol: ticket spike was unrelated",
    ):
        assert line in history, history
    show = run_mlx(["show", "rollouts.m"], spec).out
    assert "by alice: promote (in_progress) — promoted by alice: p95 flat at 10%" in show, show
    assert "by bob: abort (ok) — aborted by bob: support tickets doubled" in show, show
    assert "by carol: retry (in_progress) — retried by carol: ticket spike was unrelated" in show
    assert "ticket spike was unrelated; retried" not in show, "one line says who retried"
    notes = _notes(spec)
    for action, why in (
        ("promote", "promoted by alice: p95 flat at 10%"),
        ("abort", "aborted by bob: support tickets doubled"),
        ("retry", "retried by carol: ticket spike was unrelated"),
    ):
        assert any(a == action and (n or "").startswith(why) for a, n in notes), notes


def test_without_a_reason_the_version_records_who_did_it(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "manual", "manual")
    assert run_mlx(["apply", "--yes"], spec).code == 0
    promoted = _request(spec, "dave", "promote", "m", "--full")
    assert promoted["phase"] == "completed"
    assert promoted["reason"] == "promoted to 100% (--full) by dave", promoted
    version = _version(spec, "rollout-promote")
    assert version["actor"] == "dave"
    assert version["summary"]["reason"] == "promoted to 100% (--full) by dave"
    assert version["summary"]["request"] == "promote-full"
    assert "promoted to 100% (--full) by dave" in run_mlx(["history"], spec).out
    why = "promoted to 100% (--full) by dave"
    assert any(a == "promote-full" and (n or "").startswith(why) for a, n in _notes(spec))


def test_a_refused_request_writes_no_version(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "manual", "manual")
    assert run_mlx(["apply", "--yes"], spec).code == 0
    _request(spec, "erin", "abort", "m", "--reason", "not today")
    before = json.loads(run_mlx(["history", "--json"], spec).out)
    again = run_mlx(["rollout", "abort", "m", "--reason", "twice"], spec, env=_as("erin"))
    assert again.code != 0 and "is aborted: nothing to abort" in again.err, again
    assert json.loads(run_mlx(["history", "--json"], spec).out) == before


def test_a_request_to_an_unknown_rollout_names_the_ones_there_are(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "manual", "manual")
    assert run_mlx(["apply", "--yes"], spec).code == 0
    before = json.loads(run_mlx(["history", "--json"], spec).out)
    for command in ("promote", "abort", "retry"):
        ran = run_mlx(["rollout", command, "mm", "--reason", "typo"], spec, env=_as("erin"))
        assert ran.code == 1, ran
        assert "no rollout rollouts.mm" in ran.err and "rollouts.m" in ran.err, ran.err
        assert "Traceback" not in ran.err
    assert json.loads(run_mlx(["history", "--json"], spec).out) == before, "nothing written"
