"""Benchmark of eval gates (issue 4). Run: ``.venv/bin/python bench/eval_gate.py``.

1. ML metrics: 100,000 eval rows, 5 slices, every classification metric
   (accuracy, precision, recall, F1, ROC AUC, PR AUC, log loss, Brier, ECE,
   cost), overall and per slice. Prints mlx's time / scikit-learn's time for
   the same metrics on the same arrays (target <= 1.5). Best of ``--repeat``.
2. LLM gate: 200 cases against the OpenAI-compatible stub (a separate process)
   answering after 50 ms, concurrency 8, cache off. Prints the gate's wall
   time / the ideal 200 x 50 ms / 8 = 1.25 s (target <= 1.3).
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contract import Context, Desired, Prior  # noqa: E402
from providers.gates.provider import GateProvider  # noqa: E402


def best_of(repeat: int, fn: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


# -- 1. ML metrics --------------------------------------------------------------------------------
def ml_bench(rows: int, repeat: int) -> float:
    import numpy as np
    import sklearn.metrics as skm
    from sklearn.calibration import calibration_curve

    from providers.gates.ml.metrics import CLASSIFICATION, Options, Scored
    from providers.gates.ml.slices import Slice, measure

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, rows)
    p = 1 / (1 + np.exp(-(rng.normal(0, 1.5, rows) + 2.0 * (y - 0.5))))
    site = rng.integers(0, 5, rows)
    masks = [site == k for k in range(5)]
    slices = [Slice("site", str(k), m, int(m.sum())) for k, m in enumerate(masks)]
    cost = (5.0, 1.0, 0.0, 0.0)

    def ours() -> Any:
        scored = Scored("binary", y, (p >= 0.5).astype(np.int64), p, ("0", "1"))
        return measure(scored, CLASSIFICATION, slices, CLASSIFICATION, Options(cost=cost))

    def theirs_one(yt: Any, pt: Any) -> dict[str, float]:
        pred = (pt >= 0.5).astype(np.int64)
        tn, fp, fn, tp = skm.confusion_matrix(yt, pred, labels=[0, 1]).ravel()
        prob_true, prob_pred = calibration_curve(yt, pt, n_bins=10)
        counts = np.bincount(np.searchsorted(np.linspace(0, 1, 11)[1:-1], pt), minlength=10)
        counts = counts[counts > 0]
        return {
            "accuracy": skm.accuracy_score(yt, pred),
            "precision": skm.precision_score(yt, pred),
            "recall": skm.recall_score(yt, pred),
            "f1": skm.f1_score(yt, pred),
            "roc_auc": skm.roc_auc_score(yt, pt),
            "pr_auc": skm.average_precision_score(yt, pt),
            "log_loss": skm.log_loss(yt, pt),
            "brier": skm.brier_score_loss(yt, pt),
            "ece": float(np.sum(counts / len(pt) * np.abs(prob_true - prob_pred))),
            "cost": (cost[0] * fp + cost[1] * fn + cost[2] * tp + cost[3] * tn) / len(yt),
        }

    def theirs() -> Any:
        return [theirs_one(y, p)] + [theirs_one(y[m], p[m]) for m in masks]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, b = ours(), theirs()
        worst = max(
            abs(a.overall[k] - b[0][k]) for k in CLASSIFICATION
        )  # a benchmark of wrong numbers is worthless: check first
        assert worst < 1e-9, f"mlx and scikit-learn disagree by {worst}"
        t_ours = best_of(repeat, ours)
        t_theirs = best_of(repeat, theirs)
    ratio = t_ours / t_theirs
    print(
        f"ML metrics, {rows:,} rows x (overall + 5 slices) x {len(CLASSIFICATION)} metrics: "
        f"mlx {t_ours * 1000:.1f} ms, scikit-learn {t_theirs * 1000:.1f} ms"
    )
    print(f"  ratio mlx/scikit-learn = {ratio:.2f}  (target <= 1.5)")
    return ratio


# -- 2. LLM gate ----------------------------------------------------------------------------------
class _Peers:
    def __init__(self, specs: Mapping[str, Mapping[str, Any]]):
        self.specs = specs

    def spec(self, address: str) -> Mapping[str, Any] | None:
        return self.specs.get(address)

    def recorded(self, address: str) -> Prior | None:
        return None

    def __getattr__(self, name: str) -> Any:
        raise NotImplementedError(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the stub did not listen on port {port}")


def llm_bench(cases: int, latency_ms: float, concurrency: int) -> float:
    import yaml

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "providers.gates.testing_server", "--port", str(port),
         "--latency-ms", str(latency_ms)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_listening(port)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            rows = [
                {
                    "vars": {
                        "question": f"Where is order {i}?",
                        "context": f"Order {i} is in Leeds.",
                    },
                    "assert": [{"type": "icontains", "value": "leeds"}],
                }
                for i in range(cases)
            ]
            (root / "cases.yaml").write_text(yaml.safe_dump(rows))
            peers = _Peers(
                {
                    "prompts.p": {
                        "template": "Context: {{context}}\nQuestion: {{question}}",
                        "model": "stub",
                        "owner": "bench",
                    }
                }
            )
            provider = GateProvider({}, Context(root, root / ".mlx", peers=peers))  # type: ignore[arg-type]
            spec = {
                "subject": "prompts.p",
                "cases": "cases.yaml",
                "client": {"base_url": f"http://127.0.0.1:{port}/v1", "api_key": "x"},
                "concurrency": concurrency,
                "cache": False,
            }
            desired = Desired("evals.bench", "evals", "bench", spec)
            started = time.perf_counter()
            result = provider.create(desired)
            elapsed = time.perf_counter() - started
            assert not result.failed, result.message
            assert result.outputs["evidence"]["calls"] == cases
    finally:
        server.terminate()
        server.wait(timeout=10)
    ideal = cases * latency_ms / 1000.0 / concurrency
    ratio = elapsed / ideal
    print(
        f"LLM gate, {cases} cases x {latency_ms:g} ms at concurrency {concurrency}: "
        f"{elapsed:.3f} s, ideal {ideal:.3f} s"
    )
    print(f"  ratio actual/ideal = {ratio:.2f}  (target <= 1.3)")
    return ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    ml = ml_bench(args.rows, args.repeat)
    llm = llm_bench(args.cases, args.latency_ms, args.concurrency)
    ok = ml <= 1.5 and llm <= 1.3
    print("targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
