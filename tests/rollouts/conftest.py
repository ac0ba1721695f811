"""Rollouts through the engine, the embedded gateway's provider and a real inference log.

Traffic here is written straight into the log (what the gateway writes per request): the
controller judges what the log says, so a test controls exactly what it sees. The same
rollouts against the real gateway, driven by real HTTP requests, are in test_gateway_canary.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.release.test_release_safety import SPEC
from tests.support.harness import Workspace


def canary_rollout(pause: str = "0.2s", endpoint_provider: str | None = None) -> str:
    """The canary every rollout test drives: 10% → 50% → 100%, judged on error rate and p95."""
    provider = f"provider: {endpoint_provider}\n        " if endpoint_provider else ""
    return f"""
    alerts:
      oncall: {{type: file, path: .mlx/alerts.jsonl, owner: team-ml}}
    endpoints:
      m:
        {provider}serves: ${{models.m}}
        owner: team-ml
    rollouts:
      m:
        subject: ${{models.m}}
        endpoint: ${{endpoints.m}}
        alias: production
        requires: ["${{evals.g}}"]
        strategy: canary
        steps: [{{weight: 10, pause: {pause}}}, {{weight: 50, pause: {pause}}}, {{weight: 100}}]
        analysis:
          error_rate: {{max: 0.05}}
          latency_p95_ms: {{max: 200}}
          min_requests: 20
        alert: ${{alerts.oncall}}
        owner: team-ml
"""


ROLLOUT = canary_rollout()


def traffic(
    ws: Workspace,
    role: str,
    n: int,
    *,
    errors: int = 0,
    latency_ms: float = 20.0,
    ts: float | None = None,
    converted: int | None = None,
    shadow: str | None = None,
    labels: tuple[object, object] = ("1", "1"),
    cost_usd: float | None = None,
) -> None:
    """``n`` requests the endpoint answered as ``role`` (``errors`` of them with a 500).

    ``converted``: that many of them get feedback ``outcome: true``, the rest ``false``
    (an A/B's outcome metric). ``cost_usd``: each answer's price (None: unpriced).
    ``shadow``: each request is also mirrored, answered by the
    shadow with ``labels[1]`` where the caller got ``labels[0]``; ``shadow="error"``: 500s.
    """
    import time

    from inference.records import Feedback, InferenceRecord
    from inference.store import open_log

    store = open_log(f"sqlite:///{ws.root}/.mlx/inference.db")
    at = ts if ts is not None else time.time()
    records, feedback = [], []
    for i in range(n):
        rid = uuid.uuid4().hex
        records.append(
            InferenceRecord(
                request_id=rid,
                ts=at,
                endpoint="m",
                variant=role,
                status=500 if i < errors else 200,
                latency_ms=latency_ms,
                outputs={"predictions": [labels[0]]},
                cost_usd=cost_usd,
            )
        )
        if shadow is not None:
            records.append(
                InferenceRecord(
                    request_id=rid,
                    ts=at,
                    endpoint="m",
                    variant="shadow",
                    status=500 if shadow == "error" else 200,
                    latency_ms=latency_ms,
                    outputs={"predictions": [labels[1]]},
                )
            )
        if converted is not None:
            feedback.append(Feedback(request_id=rid, ts=at, endpoint="m", outcome=i < converted))
    try:
        store.write(records, feedback)
    finally:
        store.close()


@pytest.fixture
def canary(tmp_path: Path) -> Workspace:
    files = {k: v for k, v in SPEC.items() if k != "rollouts.yaml"}
    ws = Workspace(tmp_path / "spec").write({**files, "rollout.yaml": ROLLOUT})
    report = ws.apply()
    assert report is not None and report.ok, ws.output
    return ws
