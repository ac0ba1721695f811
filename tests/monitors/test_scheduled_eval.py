"""Scheduled evals end to end with the real `mlx`: a ``type: eval`` monitor re-runs its gate
from `mlx refresh` on the released version.

The LLM case is the realistic drift: the prompt version is unchanged, its upstream (an
OpenAI-compatible server on 127.0.0.1) starts answering worse. The monitor fires (exit 2 with
--detailed-exitcode), alerts a webhook on 127.0.0.1 once naming the version and the score,
and resolves when the upstream answers well again. The ML case re-runs a scikit-learn gate
on the model registered then and its pinned dataset: the eval CSV edited afterwards, or a new
candidate that fails the gate, does not change what is judged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from providers.gates.testing_server import OpenAIStub, support_bot
from tests.alerts.conftest import Channel
from tests.conftest import write_spec
from tests.gates.conftest import CancerData, train_cancer, write_csv
from tests.gates.conftest import cancer as cancer  # the session fixture: a fitted data split

CASES = """
- id: reno
  vars: {question: Where is the warehouse?, context: Our warehouse is in Reno. We ship daily.}
  assert: [{type: icontains, value: Reno}]
- id: refunds
  vars: {question: How long do refunds take?, context: Refunds take 5 days. Returns are free.}
  assert: [{type: icontains, value: 5 days}]
- id: express
  vars: {question: What does express shipping cost?, context: Express shipping costs 9 euros.}
  assert: [{type: icontains, value: 9 euros}]
- id: hours
  vars: {question: When are you open?, context: We are open from 9 to 5. Closed on Sunday.}
  assert: [{type: icontains, value: 9 to 5}]
"""


def llm_spec(tmp_path: Path, channel: Channel, base_url: str) -> Path:
    spec = write_spec(
        tmp_path / "spec",
        {
            "prompts.yaml": """
                prompts:
                  answer:
                    template: "Question: {{question}}\\nContext: {{context}}"
                    model: stub-model
                    owner: team-support
            """,
            "evals.yaml": f"""
                evals:
                  quality:
                    subject: ${{prompts.answer}}
                    cases: cases/quality.yaml
                    pass_rate: {{min: 0.75}}
                    client: {{type: openai, base_url: "{base_url}"}}
                    retries: 0
                    owner: team-support
            """,
            "hook.yaml": f"""
                alerts:
                  hook: {{type: webhook, url: "{channel.url}", timeout_s: 2, owner: team-support}}
            """,
            "monitors.yaml": """
                monitors:
                  quality_watch:
                    type: eval
                    gate: ${evals.quality}
                    schedule: "0 * * * *"
                    alert: ${alerts.hook}
                    owner: team-support
            """,
        },
    )
    (spec / "cases").mkdir()
    (spec / "cases" / "quality.yaml").write_text(CASES)
    return spec


def refresh(mlx_m: Any, spec: Path, name: str) -> tuple[int, dict[str, Any]]:
    run = mlx_m(["refresh", "--monitor", name, "--detailed-exitcode", "--json"], spec)
    assert run.code in (0, 2), run
    return run.code, json.loads(run.out)["monitors"][0]


def last_run(mlx_m: Any, spec: Path, address: str) -> Mapping[str, Any]:
    shown = mlx_m(["show", address, "--json"], spec)
    assert shown.code == 0, shown
    return dict(json.loads(shown.out)["outputs"]["last_run"])


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub() as server:
        yield server


def test_llm_upstream_answering_worse_fires_once_then_resolves(
    tmp_path: Path, channel: Channel, mlx_m: Any, stub: OpenAIStub
) -> None:
    spec = llm_spec(tmp_path, channel, stub.base_url)
    applied = mlx_m(["apply", "--yes"], spec)
    assert applied.code == 0, applied
    assert "evals.quality: Gate passed" in applied.out, applied
    version = json.loads(mlx_m(["show", "prompts.answer", "--json"], spec).out)["outputs"][
        "version"
    ]

    calls = stub.calls
    due = mlx_m(["refresh", "--detailed-exitcode", "--json"], spec)  # scheduled, never run: due
    assert due.code == 0, due
    [run] = json.loads(due.out)["monitors"]
    assert (run["address"], run["state"]) == ("monitors.quality_watch", "ok"), run
    assert stub.calls - calls == 4, "the upstream is called afresh (no response cache)"
    assert channel.delivered == []
    recorded = last_run(mlx_m, spec, "monitors.quality_watch")
    assert recorded["window"]["subject"] == "prompts.answer"
    assert recorded["window"]["version"] == version
    assert "evals.quality passed" in recorded["window"]["released_by"], recorded["window"]
    assert recorded["window"]["dataset"] == "cases/quality.yaml"
    assert str(recorded["window"]["dataset_fingerprint"]).startswith("sha256:")
    [row] = recorded["whole"]["metrics"]
    assert row["metric"] == "pass_rate" and row["value"] == 1.0 and row["recorded"] == 1.0
    assert row["verdict"] == "ok"

    # the same prompt version; the provider behind it changed its behaviour
    stub.responder = lambda request: "I am not sure, please ask someone else."
    code, run = refresh(mlx_m, spec, "quality_watch")
    assert (code, run["state"]) == (2, "firing"), run
    assert len(channel.delivered) == 1
    body = json.dumps(channel.delivered[0]["json"])
    assert f"version {version}" in body, body
    assert "pass_rate 0 < min 0.75 (released score 1)" in body, body
    assert "mlx show monitors.quality_watch" in body
    latest = last_run(mlx_m, spec, "monitors.quality_watch")
    assert latest["slices"][0]["version"] == str(version) and latest["slices"][0]["breach"]
    assert latest["whole"]["metrics"][0]["verdict"] == "breach"

    code, _ = refresh(mlx_m, spec, "quality_watch")  # still firing: not sent twice
    assert code == 2 and len(channel.delivered) == 1

    stub.responder = support_bot  # the upstream is fixed
    code, run = refresh(mlx_m, spec, "quality_watch")
    assert (code, run["state"]) == (0, "ok"), run
    assert len(channel.delivered) == 2
    assert channel.delivered[1]["json"]["status"] == "resolved"

    # nothing of this is release evidence: the plan has nothing to do, the gate is not due
    plan = mlx_m(["plan", "--detailed-exitcode"], spec)
    assert plan.code == 0, plan


def test_a_failing_scheduled_eval_never_fails_or_blocks_apply(
    tmp_path: Path, channel: Channel, mlx_m: Any, stub: OpenAIStub
) -> None:
    spec = llm_spec(tmp_path, channel, stub.base_url)
    assert mlx_m(["apply", "--yes"], spec).code == 0
    stub.responder = lambda request: "no idea"
    code, run = refresh(mlx_m, spec, "quality_watch")
    assert (code, run["state"]) == (2, "firing"), run

    stub.responder = support_bot
    (spec / "hook.yaml").write_text(
        (spec / "hook.yaml").read_text().replace("owner: team-support", "owner: team-oncall")
    )
    applied = mlx_m(["apply", "--yes"], spec)  # the monitor still fires; apply goes on
    assert applied.code == 0, applied
    assert "alerts.hook" in applied.out, applied
    assert mlx_m(["plan", "--detailed-exitcode"], spec).code == 0


def test_an_upstream_that_is_down_is_error_never_ok(
    tmp_path: Path, channel: Channel, mlx_m: Any, stub: OpenAIStub
) -> None:
    spec = llm_spec(tmp_path, channel, stub.base_url)
    assert mlx_m(["apply", "--yes"], spec).code == 0
    stub.fail(500, times=4)  # retries: 0, so each case fails once
    code, run = refresh(mlx_m, spec, "quality_watch")
    assert (code, run["state"]) == (0, "error"), run
    assert "evals.quality could not run" in run["reason"], run
    assert len(channel.delivered) == 1
    assert "monitors.quality_watch: error" in json.dumps(channel.delivered[0]["json"])


def test_the_version_an_endpoint_serves_is_the_one_re_run(
    tmp_path: Path, channel: Channel, mlx_m: Any, stub: OpenAIStub
) -> None:
    spec = llm_spec(tmp_path, channel, stub.base_url)
    (spec / "endpoints.yaml").write_text(
        "endpoints:\n  support:\n    owner: team-support\n    serves: ${prompts.answer}\n"
        f'    client: {{type: openai, base_url: "{stub.base_url}"}}\n'
    )
    assert mlx_m(["apply", "--yes"], spec).code == 0
    prompts = spec / "prompts.yaml"
    prompts.write_text(prompts.read_text().replace("Question: {{question}}", "Q: {{question}}"))
    assert mlx_m(["apply", "--yes"], spec).code == 0  # version 2, passed, served
    code, run = refresh(mlx_m, spec, "quality_watch")
    assert (code, run["state"]) == (0, "ok"), run
    window = last_run(mlx_m, spec, "monitors.quality_watch")["window"]
    assert window["version"] == 2 and window["released_by"] == "released by endpoints.support"


# -- an ML gate ----------------------------------------------------------------------------------
ML_SPEC = {
    "data.yaml": """
        datasets:
          eval: {uri: data/eval.csv, format: csv, owner: team-data}
    """,
    "models.yaml": """
        models:
          clf: {artifact: model.joblib, flavor: sklearn, owner: team-ml}
    """,
    "evals.yaml": """
        evals:
          release:
            subject: ${models.clf}
            dataset: ${datasets.eval}
            label: malignant
            metrics:
              roc_auc: {min: 0.9}
              accuracy: {min: 0.8, max_drop: 0.05}
    """,
    "monitors.yaml": """
        monitors:
          release_watch:
            type: eval
            gate: ${evals.release}
            owner: team-ml
    """,
}


def ml_spec(tmp_path: Path, cancer: CancerData) -> Path:
    spec = write_spec(tmp_path / "spec", ML_SPEC)
    write_eval(spec, cancer, flip=0)
    train_cancer(cancer, spec / "model.joblib", strong=True)
    return spec


def write_eval(spec: Path, cancer: CancerData, flip: int) -> None:
    """The eval rows; ``flip`` labels inverted (a changed eval file)."""
    rows = [
        [*map(float, x), int(y) if i >= flip else 1 - int(y)]
        for i, (x, y) in enumerate(zip(cancer.x_eval, cancer.y_eval, strict=True))
    ]
    write_csv(spec / "data" / "eval.csv", [*cancer.features, "malignant"], rows)


def test_ml_gate_reruns_the_released_model_on_its_pinned_dataset(
    tmp_path: Path, cancer: CancerData, mlx_m: Any
) -> None:
    spec = ml_spec(tmp_path, cancer)
    assert mlx_m(["apply", "--yes"], spec).code == 0
    gate = json.loads(mlx_m(["show", "evals.release", "--json"], spec).out)["outputs"]
    pinned = gate["evidence"]["dataset"]["fingerprint"]
    auc = gate["evidence"]["metrics"]["roc_auc"]

    code, run = refresh(mlx_m, spec, "release_watch")
    assert (code, run["state"]) == (0, "ok"), run
    recorded = last_run(mlx_m, spec, "monitors.release_watch")
    assert recorded["window"]["dataset"] == "datasets.eval"
    assert recorded["window"]["dataset_fingerprint"] == pinned
    assert recorded["window"]["version"] == 1
    rows = {r["metric"]: r for r in recorded["whole"]["metrics"]}
    assert rows["roc_auc"]["value"] == pytest.approx(auc, abs=1e-12)
    assert rows["roc_auc"]["recorded"] == pytest.approx(auc, abs=1e-12)
    assert rows["accuracy"]["max_drop"] == 0.05 and not rows["accuracy"]["max_drop_default"]
    assert rows["roc_auc"]["max_drop"] == 0.02 and rows["roc_auc"]["max_drop_default"]

    # the eval file's bytes change (labels flipped) and a weak candidate fails the gate: the
    # released version 1 is still judged on the dataset it passed on, and still passes
    write_eval(spec, cancer, flip=150)
    train_cancer(cancer, spec / "model.joblib", strong=False)
    applied = mlx_m(["apply", "--yes"], spec)
    assert applied.code == 1, applied  # the gate rejects the new candidate on the new data
    code, run = refresh(mlx_m, spec, "release_watch")
    assert (code, run["state"]) == (0, "ok"), run
    again = last_run(mlx_m, spec, "monitors.release_watch")
    assert again["window"]["version"] == 1 and again["window"]["dataset_fingerprint"] == pinned
    assert {r["metric"]: r["value"] for r in again["whole"]["metrics"]}["roc_auc"] == (
        pytest.approx(auc, abs=1e-12)
    )
    shown = mlx_m(["show", "monitors.release_watch"], spec)
    assert shown.code == 0 and "roc_auc" in shown.out, shown


def test_a_predictions_gate_cannot_be_scheduled(
    tmp_path: Path, cancer: CancerData, mlx_m: Any
) -> None:
    spec = ml_spec(tmp_path, cancer)
    evals = spec / "evals.yaml"
    evals.write_text(
        evals.read_text().replace("label: malignant", "label: malignant\n    predictions: p.csv")
    )
    write_csv(spec / "p.csv", ["score"], [[0.5]] * len(cancer.y_eval))
    plan = mlx_m(["plan"], spec)
    assert plan.code == 1, plan
    assert "evals.release judges a predictions file" in plan.err, plan
    assert "monitors.yaml" in plan.err, plan
