"""Issue 18, item 17: `requires: []` is an explicit opt-out from waiting for a gate's pass,
shown in the plan (text, Markdown, JSON) naming the gates it skips — and a failed verdict
for exactly the version released still refuses its release. Through the `mlx` command."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Run, run_mlx, write_spec
from tests.release.test_release_safety import SPEC

ENDPOINT = """
    endpoints:
      m:
        serves: ${models.m}
        owner: team-ml
        requires: []
"""
SKIPS = (
    "requires: [] skips evals.g (on models.m): the release does not wait for its pass, "
    "though a failed verdict for exactly the version released still refuses it"
)


def _route(spec: Path) -> dict[str, Any]:
    with sqlite3.connect(spec / ".mlx" / "state.db") as conn:
        (doc,) = conn.execute("SELECT doc FROM mlx_gateway_routes WHERE endpoint = 'm'").fetchone()
    return dict(json.loads(doc))


def _outputs(spec: Path, address: str) -> dict[str, Any]:
    with sqlite3.connect(spec / ".mlx" / "state.db") as conn:
        (outputs,) = conn.execute(
            "SELECT outputs FROM mlx_resources WHERE address = ?", (address,)
        ).fetchone()
    return dict(json.loads(outputs))


def _apply(spec: Path) -> Run:
    return run_mlx(["apply", "--yes"], spec)


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    files = {k: v for k, v in SPEC.items() if k != "rollouts.yaml"}
    root = write_spec(tmp_path / "spec", {**files, "endpoints.yaml": ENDPOINT})
    first = _apply(root)
    assert first.code == 0, first
    assert _route(root)["traffic"]["stable"] == "v1"
    return root


def test_a_failed_verdict_refuses_a_release_that_opted_out_of_the_gate(spec: Path) -> None:
    (spec / "model.txt").write_text("score=0.10")  # v2: its gate fails in this same apply
    plan = run_mlx(["plan"], spec)
    assert f"# Warning: {SKIPS}" in plan.out, plan
    assert "# released unless evals.g rejects it" in plan.out, plan
    markdown = run_mlx(["plan", "--markdown"], spec)
    assert f"`endpoints.m`: {SKIPS}" in markdown.out, markdown
    as_json = json.loads(run_mlx(["plan", "--json"], spec).out)
    assert f"endpoints.m: {SKIPS}" in as_json["mlx"]["warnings"]

    result = _apply(spec)
    assert result.code == 1, result
    assert "evals.g: Gate FAILED" in result.out, result
    assert (
        "refusing to release models.m v2: evals.g failed for exactly models.m v2" in result.err
    ), result
    route = _route(spec)
    assert route["traffic"]["stable"] == "v1" and set(route["variants"]) == {"v1"}, route
    assert _outputs(spec, "endpoints.m")["stable_version"] == 1
    assert _outputs(spec, "models.m")["version"] == 2  # registered, never released

    again = _apply(spec)  # the gate runs again and fails again: still refused
    assert again.code == 1 and "refusing to release models.m v2" in again.err, again
    assert _route(spec)["traffic"]["stable"] == "v1"


def test_a_gate_that_could_not_judge_does_not_hold_an_opted_out_release(spec: Path) -> None:
    """No verdict is no rejection: the opt-out does not wait for the gate."""
    (spec / "model.txt").write_text("weights without a score")  # the gate errors: no verdict
    result = _apply(spec)
    assert result.code == 1, result  # the gate's error is reported
    assert "no score= in the artifact" in result.err, result
    assert "endpoints.m: Modifications complete" in result.out, result
    assert _route(spec)["traffic"]["stable"] == "v2"


def test_with_no_gate_on_the_subject_it_releases_with_the_warning(tmp_path: Path) -> None:
    files = {k: v for k, v in SPEC.items() if k not in ("rollouts.yaml", "gates.yaml")}
    spec = write_spec(tmp_path / "spec", {**files, "endpoints.yaml": ENDPOINT})
    warning = "requires: [] and no gate judges models.m: it is released without any verdict"
    first = _apply(spec)
    assert first.code == 0 and f"# Warning: {warning}" in first.out, first
    (spec / "model.txt").write_text("score=0.10")
    plan = run_mlx(["plan"], spec)
    assert f"# Warning: {warning}" in plan.out, plan
    result = _apply(spec)
    assert result.code == 0, result
    assert _route(spec)["traffic"]["stable"] == "v2"
    assert _outputs(spec, "endpoints.m")["stable_version"] == 2


def test_a_metadata_edit_of_an_opted_out_release_is_not_warned_about(spec: Path) -> None:
    text = (spec / "endpoints.yaml").read_text()
    (spec / "endpoints.yaml").write_text(text.replace("owner: team-ml", "owner: team-risk"))
    plan = run_mlx(["plan"], spec)
    assert "endpoints.m will be updated in place" in plan.out, plan
    assert "Warning" not in plan.out, plan
