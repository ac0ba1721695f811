"""``GateProvider.rerun`` (what a ``type: eval`` monitor calls): the gate's own code on pinned,
recorded versions — never the spec's current files — and an LLM gate calling its endpoint
afresh (the response cache would hide the behaviour being watched)."""

from __future__ import annotations

from typing import Any

import pytest

from contract import ProviderError
from providers.gates.testing_server import OpenAIStub
from tests.gates.conftest import Bench, CancerData, train_cancer
from tests.gates.test_llm_gate import make_cases
from tests.gates.test_llm_gate import setup as llm_setup

SUBJECT = "models.clf"
GATE = {
    "subject": SUBJECT,
    "dataset": "datasets.eval",
    "label": "malignant",
    "baseline": "none",
    "metrics": {"roc_auc": {"min": 0.5}},
}


def test_rerun_judges_the_pinned_model_and_dataset_not_the_declared_files(
    bench: Bench, cancer: CancerData
) -> None:
    strong = train_cancer(cancer, bench.root / "artifacts" / "model.joblib", strong=True)
    bench.declare_model(SUBJECT, "artifacts/model.joblib")
    v1 = bench.register(SUBJECT, strong, 1)
    data = bench.register("datasets.eval", bench.root / "data" / "eval.csv", 1)
    data = {"revision": 1, "fingerprint": data["fingerprint"]}
    judged_then = bench.provider.create(bench.desired(GATE, {SUBJECT: v1}))
    assert not judged_then.failed, judged_then.message
    # the spec moves on: a weak model declared, the eval file's labels all flipped
    train_cancer(cancer, bench.root / "artifacts" / "model.joblib", strong=False)
    lines = (bench.root / "data" / "eval.csv").read_text().splitlines()
    flipped = [lines[0]] + [ln[:-1] + ("0" if ln.endswith("1") else "1") for ln in lines[1:]]
    (bench.root / "data" / "eval.csv").write_text("\n".join(flipped) + "\n")

    pins = {SUBJECT: v1, "datasets.eval": data}
    again = bench.provider.rerun(bench.desired(GATE, pins), pins)
    assert not again.failed, again.message
    assert again.outputs["evidence"]["metrics"]["roc_auc"] == pytest.approx(
        judged_then.outputs["evidence"]["metrics"]["roc_auc"], abs=1e-12
    )
    assert (SUBJECT, v1) in bench.peers.materialized
    assert ("datasets.eval", data) in bench.peers.materialized
    assert again.outputs["evidence"]["dataset"]["fingerprint"] == data["fingerprint"]

    # and evaluate (an apply) reads the declared files: the weak model on flipped labels
    now = bench.provider.evaluate(bench.desired(GATE, {SUBJECT: v1}))
    assert now.outputs["evidence"]["metrics"]["roc_auc"] < 0.5


def test_rerun_of_a_predictions_gate_is_refused(bench: Bench) -> None:
    spec: dict[str, Any] = {**GATE, "predictions": "preds.csv"}
    with pytest.raises(ProviderError, match="predictions file, not its subject"):
        bench.provider.rerun(bench.desired(spec), {})


def test_rerun_of_an_llm_gate_calls_the_endpoint_again(bench: Bench, stub: OpenAIStub) -> None:
    spec = llm_setup(bench, stub.base_url, make_cases(5))
    bench.provider.create(bench.desired(spec))
    bench.provider.create(bench.desired(spec))
    assert stub.calls == 5, "an apply answers unchanged cases from the cache"
    again = bench.provider.rerun(bench.desired(spec), {})
    assert stub.calls == 10 and again.outputs["evidence"]["calls"] == 5
    assert again.outputs["evidence"]["cache_hits"] == 0
