"""Scheduled evals, the decisions on their own: ``judge_metric`` branch by branch, and a run's
states against in-memory peers (``providers.testing.FakePeers``) and a scripted gate — which
version is re-run, what it is pinned to, and every way a run is ``error`` rather than ``ok``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from contract import Desired, Gate, Prior, ProviderError, Released, Result
from providers.monitor.provider import RUNNERS, TYPES
from providers.monitor.scheduled_eval import (
    DEFAULT_MAX_DROP,
    DEFAULT_PASS_RATE_DROP,
    judge_metric,
    run,
)
from providers.testing.peers import FakePeers
from specs.evals import Threshold
from specs.monitors import Monitor

T = Threshold


@pytest.mark.parametrize(
    ("metric", "value", "recorded", "bounds", "verdict", "finding", "threshold"),
    [
        # within everything
        ("roc_auc", 0.96, 0.97, T(min=0.95), "ok", None, 0.95),
        # below min, named with the released score
        (
            "roc_auc",
            0.91,
            0.97,
            T(min=0.95),
            "breach",
            "roc_auc 0.91 < min 0.95 (released score 0.97)",
            0.95,
        ),
        # min boundary passes
        ("roc_auc", 0.95, 0.95, T(min=0.95), "ok", None, 0.95),
        # above max (a loss)
        ("log_loss", 0.5, 0.2, T(max=0.4), "breach", "log_loss 0.5 > max 0.4", 0.22),
        # a fall beyond max_drop, though above min
        (
            "accuracy",
            0.90,
            0.97,
            T(min=0.8, max_drop=0.05),
            "breach",
            "accuracy 0.9 fell 0.07 from the released score 0.97 (max_drop 0.05)",
            0.92,
        ),
        # a fall of exactly max_drop passes
        ("accuracy", 0.92, 0.97, T(max_drop=0.05), "ok", None, 0.92),
        # no max_drop: the default tolerance, said so
        (
            "recall",
            0.90,
            0.95,
            T(min=0.5),
            "breach",
            f"(default max_drop {DEFAULT_MAX_DROP:g})",
            0.93,
        ),
        # a loss rising is its drop
        (
            "rmse",
            1.3,
            1.0,
            T(max_drop=0.2),
            "breach",
            "rmse 1.3 rose 0.3 from the released score 1",
            1.2,
        ),
        # an improvement never breaches
        ("rmse", 0.5, 1.0, T(max_drop=0.0), "ok", None, 1.0),
        ("f1", 0.99, 0.90, T(max_drop=0.0), "ok", None, 0.90),
        # no recorded score: bounds only
        ("f1", 0.7, None, T(min=0.5), "ok", None, 0.5),
        ("f1", 0.7, None, T(), "ok", None, None),
        # undefined now
        (
            "roc_auc",
            None,
            0.97,
            T(min=0.5),
            "breach",
            "roc_auc is undefined on the pinned data",
            0.95,
        ),
    ],
)
def test_judge_metric(
    metric: str,
    value: float | None,
    recorded: float | None,
    bounds: Threshold,
    verdict: str,
    finding: str | None,
    threshold: float | None,
) -> None:
    row = judge_metric(metric, value, recorded, bounds)
    assert str(row.verdict) == verdict
    if finding is None:
        assert row.findings == ()
    else:
        assert any(finding in f for f in row.findings), row.findings
    assert row.threshold == (pytest.approx(threshold) if threshold is not None else None)
    as_dict = row.as_dict()
    assert {"metric", "value", "threshold", "verdict", "recorded"} <= set(as_dict)


def test_two_crossings_are_two_findings() -> None:
    row = judge_metric("roc_auc", 0.80, 0.97, T(min=0.9, max_drop=0.01))
    assert len(row.findings) == 2


def test_eval_is_a_runner_type() -> None:
    assert RUNNERS["eval"] == "providers.monitor.scheduled_eval:run"
    assert "eval" in TYPES


# -- a run against in-memory peers ------------------------------------------------------------
class ScriptedGate(Gate):
    def __init__(self, result: Result | Exception):
        self.result = result
        self.calls: list[tuple[Desired, dict[str, Any]]] = []

    def evaluate(self, desired: Desired) -> Result:
        raise AssertionError("a scheduled eval never runs the gate as an apply does")

    def rerun(self, desired: Desired, pinned: Mapping[str, Mapping[str, Any]]) -> Result:
        self.calls.append((desired, {k: dict(v) for k, v in pinned.items()}))
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


ML_GATE = {
    "subject": "${models.m}",
    "dataset": "${datasets.eval}",
    "label": "y",
    "metrics": {"roc_auc": {"min": 0.9}},
}
LLM_GATE = {"subject": "${prompts.p}", "cases": "cases.yaml", "pass_rate": {"min": 0.8}}
V2 = {"version": 2, "fingerprint": "sha256:" + "2" * 64, "uri": "local://models/m/2"}
DATA = {"revision": 3, "fingerprint": "sha256:" + "d" * 64}


def ml_evidence(auc: float, **more: Any) -> dict[str, Any]:
    return {
        "kind": "ml",
        "rows": 100,
        "metrics": {"roc_auc": auc},
        "dataset": {"address": "datasets.eval", **DATA},
        "checks": [{"metric": "roc_auc", "scope": "overall", "reasons": []}],
        **more,
    }


def passed(evidence: dict[str, Any], dataset: str | None = "datasets.eval") -> dict[str, Any]:
    return {
        "serial": 7,
        "dataset": dataset,
        "dataset_fingerprint": DATA["fingerprint"] if dataset else None,
        "outputs": {"passed": True, "evidence": evidence},
    }


def setup(
    tmp_path: Path, gate_spec: dict[str, Any] | None, result: Result | Exception
) -> tuple[FakePeers, ScriptedGate]:
    peers = FakePeers(tmp_path)
    if gate_spec is not None:
        peers.declare("evals.q", gate_spec)
    gate = ScriptedGate(result)
    peers.gates["evals.q"] = gate
    return peers, gate


def watch(peers: FakePeers | None, **more: Any) -> dict[str, Any]:
    provider = SimpleNamespace(context=SimpleNamespace(peers=peers))
    spec = Monitor.model_validate({"type": "eval", "gate": "${evals.q}", "owner": "t", **more})
    return run(provider, spec, None, 0.0)


def test_released_version_on_its_pinned_dataset_ok(tmp_path: Path) -> None:
    peers, gate = setup(tmp_path, ML_GATE, Result({"passed": True, "evidence": ml_evidence(0.95)}))
    peers.releases["models.m"] = Released(V2, "released by rollouts.m (alias production)")
    peers.verdicts[("evals.q", V2["fingerprint"])] = passed(ml_evidence(0.96))
    out = watch(peers)
    assert out["state"] == "ok", out
    [(desired, pins)] = gate.calls
    assert pins == {"models.m": V2, "datasets.eval": DATA}
    assert desired.address == "evals.q" and desired.inputs["models.m"] == V2
    assert out["window"]["version"] == 2 and out["window"]["released_by"].startswith("released by")
    assert out["window"]["dataset_fingerprint"] == DATA["fingerprint"]
    [piece] = out["slices"]
    assert piece["variant"] is None and piece["version"] == "2" and piece["breach"] is False
    row = piece["metrics"][0]
    assert (row["value"], row["recorded"], row["verdict"]) == (0.95, 0.96, "ok")
    assert ("set_alias", "models.m") not in peers.calls and peers.writes() == []


def test_a_fall_fires_naming_the_released_score(tmp_path: Path) -> None:
    peers, _ = setup(tmp_path, ML_GATE, Result({"evidence": ml_evidence(0.85)}, failed=True))
    peers.releases["models.m"] = Released(V2, "released by endpoints.m")
    peers.verdicts[("evals.q", V2["fingerprint"])] = passed(ml_evidence(0.97))
    out = watch(peers)
    assert out["state"] == "firing"
    assert out["slices"][0]["findings"][0] == "roc_auc 0.85 < min 0.9 (released score 0.97)"
    assert "models.m version 2" in out["reason"]


def test_a_slice_the_gate_fails_fires_with_the_gates_words(tmp_path: Path) -> None:
    why = "roc_auc on site=north 0.7000 < min 0.9"
    slice_check = {"metric": "roc_auc", "scope": "site=north", "reasons": [why]}
    evidence = ml_evidence(0.96)
    evidence["checks"].append(slice_check)
    peers, _ = setup(tmp_path, ML_GATE, Result({"evidence": evidence}, failed=True))
    peers.releases["models.m"] = Released(V2, "released by endpoints.m")
    peers.verdicts[("evals.q", V2["fingerprint"])] = passed(ml_evidence(0.96))
    out = watch(peers)
    assert out["state"] == "firing"
    assert out["slices"][0]["findings"] == [why]


def test_nothing_released_re_runs_the_recorded_version(tmp_path: Path) -> None:
    peers, _ = setup(tmp_path, ML_GATE, Result({"evidence": ml_evidence(0.95)}))
    peers.record(Prior("models.m", "models", "m", {}, V2))
    peers.verdicts[("evals.q", V2["fingerprint"])] = passed(ml_evidence(0.95))
    out = watch(peers)
    assert out["state"] == "ok", out
    assert out["window"]["released_by"] == "the recorded version of models.m (nothing released)"


def rerun_error(tmp_path: Path, gate_spec: Any, result: Any, verdict: Any = None) -> dict[str, Any]:
    peers, _ = setup(tmp_path, gate_spec, result)
    peers.releases["models.m"] = Released(V2, "released by endpoints.m")
    peers.releases["prompts.p"] = Released(V2, "released by endpoints.p")
    if verdict is not None:
        peers.verdicts[("evals.q", V2["fingerprint"])] = verdict
    out = watch(peers)
    assert out["state"] == "error", out
    assert out["slices"] == [] and out["whole"] is None
    return out


LLM_THEN = {
    "kind": "llm",
    "pass_rate": 1.0,
    "subject": {"prompt_fingerprint": "sha256:p1"},
    "cases_file": {"fingerprint": "sha256:c1"},
}


@pytest.mark.parametrize(
    ("gate_spec", "result", "verdict", "reason"),
    [
        (None, Result(), None, "evals.q is not declared in the spec"),
        ({"subject": "${models.m}"}, Result(), None, "evals.q is not a gate"),
        (ML_GATE, Result(), None, "evals.q never passed models.m version 2"),
        (ML_GATE, ProviderError("boom"), passed(ml_evidence(0.9)), "cannot re-run evals.q: boom"),
        (
            ML_GATE,
            ValueError("Input contains NaN"),
            passed(ml_evidence(0.9)),
            "cannot re-run evals.q: ValueError: Input contains NaN",
        ),
        (
            ML_GATE,
            Result({"evidence": {"kind": "ml", "error": "model does not load"}}, failed=True),
            passed(ml_evidence(0.9)),
            "evals.q could not run: model does not load",
        ),
        (
            LLM_GATE,
            Result({"evidence": {**LLM_THEN, "cases_errored": 2}}, failed=True, message="HTTP 500"),
            passed(LLM_THEN, None),
            "evals.q could not run: HTTP 500",
        ),
        (
            LLM_GATE,
            Result({"evidence": {**LLM_THEN, "subject": {"prompt_fingerprint": "sha256:p2"}}}),
            passed(LLM_THEN, None),
            "is not the released version 2",
        ),
        (
            LLM_GATE,
            Result({"evidence": {**LLM_THEN, "cases_file": {"fingerprint": "sha256:c2"}}}),
            passed(LLM_THEN, None),
            "the cases of evals.q changed since it passed version 2",
        ),
    ],
)
def test_a_run_that_cannot_judge_is_error_never_ok(
    tmp_path: Path, gate_spec: Any, result: Any, verdict: Any, reason: str
) -> None:
    out = rerun_error(tmp_path, gate_spec, result, verdict)
    assert reason in out["reason"], out["reason"]


def test_no_peers_is_error(tmp_path: Path) -> None:
    out = watch(None)
    assert out["state"] == "error" and "peers" in out["reason"]


def test_no_version_at_all_is_error(tmp_path: Path) -> None:
    peers, gate = setup(tmp_path, ML_GATE, Result())
    out = watch(peers)
    assert out["state"] == "error"
    assert "models.m has no released or recorded version" in out["reason"]
    assert gate.calls == []


def test_llm_pass_rate_uses_its_own_default_drop(tmp_path: Path) -> None:
    now = {**LLM_THEN, "pass_rate": 0.9, "cases_total": 20}
    peers, _ = setup(tmp_path, LLM_GATE, Result({"evidence": now}))
    peers.releases["prompts.p"] = Released(V2, "released by endpoints.p")
    peers.verdicts[("evals.q", V2["fingerprint"])] = passed(LLM_THEN, None)
    out = watch(peers)
    assert out["state"] == "firing", out  # 0.9 >= min 0.8, but 0.1 below the released 1.0
    row = out["slices"][0]["metrics"][0]
    assert row["max_drop"] == DEFAULT_PASS_RATE_DROP and row["max_drop_default"] is True
    assert out["slices"][0]["requests"] == 20


@pytest.mark.parametrize(
    ("threshold", "state", "max_drop"),
    [(None, "firing", DEFAULT_MAX_DROP), (0.05, "ok", 0.05), (0.0, "firing", 0.0)],
)
def test_the_monitors_threshold_is_the_tolerance_where_the_gate_has_none(
    tmp_path: Path, threshold: float | None, state: str, max_drop: float
) -> None:
    peers, _ = setup(tmp_path, ML_GATE, Result({"evidence": ml_evidence(0.93)}))
    peers.releases["models.m"] = Released(V2, "released by endpoints.m")
    peers.verdicts[("evals.q", V2["fingerprint"])] = passed(ml_evidence(0.96))
    out = watch(peers, **({} if threshold is None else {"threshold": threshold}))
    assert out["state"] == state, out
    assert out["slices"][0]["metrics"][0]["max_drop"] == max_drop
