"""Gates through the real `mlx` command: blocking dependents, re-runs, the examples."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from providers.gates.testing_server import OpenAIStub
from tests.conftest import REPO, Run, run_mlx, write_spec
from tests.gates.conftest import CancerData, train_cancer, write_csv

SPEC = {
    "data.yaml": """
        datasets:
          eval:
            uri: data/eval.csv
            format: csv
            owner: team-data
    """,
    "models.yaml": """
        models:
          clf:
            artifact: model.joblib
            flavor: sklearn
            owner: team-ml
    """,
    "evals.yaml": """
        evals:
          release:
            subject: ${models.clf}
            dataset: ${datasets.eval}
            label: malignant
            metrics:
              roc_auc: {min: MIN_AUC}
            slices: {by: [site], min_rows: 30}
    """,
    "alerts.yaml": """
        alerts:
          release_channel:
            type: file
            path: release.jsonl
            owner: team-ml
            depends_on: [evals.release]
          oncall:
            type: file
            path: oncall.jsonl
            owner: team-ml
    """,
}


def make_spec(root: Path, cancer: CancerData, min_auc: float, strong: bool = False) -> Path:
    files = dict(SPEC)
    files["evals.yaml"] = files["evals.yaml"].replace("MIN_AUC", str(min_auc))
    write_spec(root, files)
    rows = [
        [*map(float, x), ("north", "south", "east")[i % 3], int(y)]
        for i, (x, y) in enumerate(zip(cancer.x_eval, cancer.y_eval, strict=True))
    ]
    write_csv(root / "data" / "eval.csv", [*cancer.features, "site", "malignant"], rows)
    train_cancer(cancer, root / "model.joblib", strong=strong)
    return root


def show(root: Path, address: str) -> dict:
    run = run_mlx(["show", address, "--json"], root)
    assert run.code == 0, str(run)
    return json.loads(run.out)


def test_failing_gate_blocks_its_dependent_and_runs_again(
    tmp_path: Path, cancer: CancerData
) -> None:
    root = make_spec(tmp_path / "spec", cancer, min_auc=0.999)  # the weak model cannot pass
    first = run_mlx(["apply", "--yes"], root)
    assert first.code == 1, str(first)
    output = first.out + first.err
    assert "evals.release: Gate FAILED" in output
    assert "roc_auc" in output and "< min 0.999" in output
    assert "alerts.release_channel: skipped" in output

    assert show(root, "evals.release")["status"] == "failed"
    gate = show(root, "evals.release")["outputs"]
    assert gate["passed"] is False and gate["evidence"]["metrics"]["roc_auc"] < 0.999
    assert "FAILED" in gate["report"]
    assert show(root, "models.clf")["outputs"]["version"] == 1  # registered, not released
    assert show(root, "alerts.oncall")["status"] == "ok"  # the unrelated branch applied
    missing = run_mlx(["show", "alerts.release_channel", "--json"], root)
    assert missing.code == 1 and "not in the state" in missing.err, str(missing)

    # nothing changed, but the gate has not passed: the next plan runs it again
    again = run_mlx(["plan", "--detailed-exitcode"], root)
    assert again.code == 2, str(again)
    assert "evals.release" in again.out and "gate has not passed yet" in again.out


def test_gate_reruns_only_when_its_inputs_change(tmp_path: Path, cancer: CancerData) -> None:
    root = make_spec(tmp_path / "spec", cancer, min_auc=0.5)
    applied = run_mlx(["apply", "--yes"], root)
    assert applied.code == 0, str(applied)
    assert "evals.release: Gate passed" in applied.out
    assert show(root, "alerts.release_channel")["status"] == "ok"

    quiet = run_mlx(["plan", "--detailed-exitcode"], root)
    assert quiet.code == 0, str(quiet)  # same model, data and definition: no re-run

    train_cancer(cancer, root / "model.joblib", strong=True)  # a new candidate
    moved = run_mlx(["plan", "--detailed-exitcode"], root)
    assert moved.code == 2 and "evals.release" in moved.out, str(moved)
    reapplied = run_mlx(["apply", "--yes"], root)
    assert reapplied.code == 0, str(reapplied)
    ev = show(root, "evals.release")["outputs"]["evidence"]
    assert ev["subject"]["version"] == 2, (reapplied, ev["subject"], ev["baseline"])
    assert ev["baseline"]["status"] == "compare" and ev["baseline"]["version"] == 1


def test_first_release_through_the_cli_says_so(tmp_path: Path, cancer: CancerData) -> None:
    root = make_spec(tmp_path / "spec", cancer, min_auc=0.5)
    assert run_mlx(["apply", "--yes"], root).code == 0
    assert show(root, "evals.release")["outputs"]["evidence"]["baseline"]["status"] == "absent"


def _train_quickstart(spec: Path) -> None:
    done = subprocess.run(
        [sys.executable, "train.py"], cwd=spec, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr


def test_quickstart_gate_passes_with_the_trained_model(tmp_path: Path) -> None:
    spec = tmp_path / "quickstart"
    shutil.copytree(REPO / "examples" / "quickstart", spec)
    _train_quickstart(spec)
    applied = run_mlx(["apply", "--yes"], spec)
    assert applied.code == 0, str(applied)
    assert "evals.tumor_release: Gate passed" in applied.out
    gate = show(spec, "evals.tumor_release")["outputs"]
    assert gate["passed"] is True
    assert {s["slice"] for s in gate["evidence"]["slices"]} == {
        "site=east",
        "site=north",
        "site=south",
    }


def _run_llm_example(spec: Path, base_url: str) -> Run:
    env = {"OPENAI_API_KEY": "sk-local", "MLX_VAR_llm_base_url": base_url}
    return run_mlx(["apply", "--yes"], spec, env=env)


def test_llm_support_example_passes_against_a_local_server(tmp_path: Path) -> None:
    spec = tmp_path / "llm-support"
    shutil.copytree(REPO / "examples" / "llm-support", spec)
    with OpenAIStub() as server:
        applied = _run_llm_example(spec, server.base_url)
        assert applied.code == 0, str(applied)
        assert "evals.support_quality: Gate passed" in applied.out
        ev = show(spec, "evals.support_quality")["outputs"]["evidence"]
        assert ev["cases_total"] >= 50 and ev["calls"] == ev["cases_total"]
        assert "sk-local" not in json.dumps(show(spec, "evals.support_quality"))
        # editing one case re-runs the gate; the 49+ unchanged ones come from the cache
        cases = spec / "cases" / "support.yaml"
        text = cases.read_text()
        old = '"Where is your warehouse?", context'
        assert text.count(old) == 1
        cases.write_text(text.replace(old, '"Where is your warehouse located?", context'))
        calls_before = server.calls
        rerun = _run_llm_example(spec, server.base_url)
        assert rerun.code == 0, str(rerun)
        assert "evals.support_quality: Gate passed" in rerun.out
        assert server.calls - calls_before == 1


def test_the_readme_tour_streams_the_support_answer(tmp_path: Path) -> None:
    """README tour step 7: the LLM example, applied against the stub, serves its prompt at
    one OpenAI base URL, and the ``openai`` client streams the answer; the record has the
    tokens the usage chunk reported and a time to first token."""
    from tests.conftest import require_extra
    from tests.gateway.support import Served, records

    openai = require_extra("openai", "dev")
    spec = tmp_path / "llm-support"
    shutil.copytree(REPO / "examples" / "llm-support", spec)
    with OpenAIStub(stream_delay_s=0.01) as stub:
        applied = _run_llm_example(spec, stub.base_url)
        assert applied.code == 0, str(applied)
        server = Served(spec, env={"OPENAI_API_KEY": "sk-local"}).wait_ready()
        try:
            client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
            assert [m.id for m in client.models.list()] == ["support"]
            question = {
                "question": "Where is your warehouse?",
                "context": "Our warehouse is in Reno.",
            }
            t0 = time.perf_counter()
            first_token_ms = None
            chunks = []
            for chunk in client.chat.completions.create(
                model="support",
                messages=[],
                stream=True,
                stream_options={"include_usage": True},
                extra_body={"variables": question},
                extra_headers={"x-request-id": "tour-1"},
            ):
                if first_token_ms is None and chunk.choices and chunk.choices[0].delta.content:
                    first_token_ms = (time.perf_counter() - t0) * 1000.0
                chunks.append(chunk)
            total_ms = (time.perf_counter() - t0) * 1000.0
            pieces = [c.choices[0].delta.content for c in chunks if c.choices]
            assert "".join(p or "" for p in pieces) == "Our warehouse is in Reno."
            assert len([p for p in pieces if p]) > 1  # it arrived in pieces
            usage = chunks[-1].usage
            assert usage is not None
            log = f"sqlite:///{spec / '.mlx' / 'inference.db'}"
            rec = server.wait_for(
                lambda: next(
                    (r for r in records(log, "support") if r.request_id == "tour-1"), None
                ),
                what="the streamed request's record",
            )
            assert (rec.status, rec.version) == (200, "1")
            assert (rec.input_tokens, rec.output_tokens) == (
                usage.prompt_tokens,
                usage.completion_tokens,
            )
            # the gateway's clocks start after the client's and stop before it reads the end
            assert first_token_ms is not None and rec.ttft_ms is not None
            assert 0 < rec.ttft_ms <= first_token_ms
            assert rec.ttft_ms < rec.latency_ms <= total_ms
        finally:
            server.stop()
