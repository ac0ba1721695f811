"""The whole loop on real parts: `mlx apply` registers a model and an endpoint, `mlx serve`
answers real HTTP requests, a canary rollout is judged on the traffic the gateway logged,
and it completes — or aborts when the candidate fails — with no restart of the gateway."""

from __future__ import annotations

import pickle
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from engine.workflows import rollouts
from tests.gateway.slow_models import Crashy
from tests.gateway.support import Served
from tests.support.harness import Workspace

pytestmark = pytest.mark.slow

SPEC = {
    "models.yaml": """
        models:
          m: {artifact: model.joblib, flavor: sklearn, owner: team-ml}
    """,
    "serving.yaml": """
        alerts:
          oncall: {type: file, path: .mlx/alerts.jsonl, owner: team-ml}
        endpoints:
          m: {serves: "${models.m}", owner: team-ml, log: {payloads: 1.0}}
        rollouts:
          m:
            subject: ${models.m}
            endpoint: ${endpoints.m}
            alias: production
            requires: []
            strategy: canary
            steps: [{weight: 40, pause: 1.5s}, {weight: 100}]
            analysis: {error_rate: {max: 0.05}, min_requests: 10}
            alert: ${alerts.oncall}
            owner: team-ml
    """,
}
ROWS = [[0.1, 0.2, 0.3, 0.4], [1.0, -1.0, 0.5, 2.0], [3.0, 0.0, -2.0, 1.0]]


def _train(path: Path, seed: int) -> Any:
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, 4))
    y = (x[:, 0] + x[:, 1] * seed > 0).astype(int)
    model = LogisticRegression().fit(x, y)
    joblib.dump(model, path)
    return model


class Traffic:
    """Callers hitting the gateway in the background, each with its own sticky key."""

    def __init__(self, served: Served):
        self.served = served
        self.stop = threading.Event()
        self.replies: list[tuple[int, str | None, str | None]] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            reply = self.served.post(
                "/endpoints/m/invocations",
                {"instances": ROWS[:1]},
                headers={"x-mlx-key": uuid.uuid4().hex},
            )
            self.replies.append(
                (
                    reply.status,
                    reply.headers.get("x-mlx-variant"),
                    reply.headers.get("x-mlx-version"),
                )
            )

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def _drive(ws: Workspace) -> rollouts.PassResult:
    session = ws.session()
    try:
        for _ in range(400):
            result = rollouts.step(session, "m")
            if result.done or result.waiting:
                return result
            time.sleep(0.1)
    finally:
        session.close()
    raise AssertionError(f"the rollout never ended: {result}")


@pytest.fixture
def served(tmp_path: Path) -> Any:
    ws = Workspace(tmp_path / "spec").write(SPEC)
    v1 = _train(ws.root / "model.joblib", seed=1)
    report = ws.apply()
    assert report is not None and report.ok, ws.output
    gateway = Served(ws.root, poll=0.1).wait_ready()
    try:
        yield ws, gateway, v1
    finally:
        gateway.stop()


def test_predictions_equal_the_models_own_and_a_healthy_canary_completes(served: Any) -> None:
    ws, gateway, v1 = served
    reply = gateway.post("/endpoints/m/invocations", {"instances": ROWS})
    assert reply.status == 200, reply
    assert reply.json()["predictions"] == v1.predict(ROWS).tolist()
    assert reply.headers["x-mlx-version"] == "1" and reply.headers["x-mlx-variant"] == "stable"

    v2 = _train(ws.root / "model.joblib", seed=3)
    report = ws.apply()
    assert report is not None and report.ok, ws.output
    with Traffic(gateway) as traffic:
        result = _drive(ws)
    assert result.phase == "completed", result
    assert {v for s, r, v in traffic.replies if r == "candidate"} == {"2"}, (
        "the canary took traffic"
    )
    assert all(status == 200 for status, _, _ in traffic.replies)
    ok = gateway.wait_for(
        lambda: (
            gateway.post("/endpoints/m/invocations", {"instances": ROWS}).headers.get(
                "x-mlx-version"
            )
            == "2"
        ),
        what="v2 serving everything",
    )
    assert ok
    assert gateway.post("/endpoints/m/invocations", {"instances": ROWS}).json()["predictions"] == (
        v2.predict(ROWS).tolist()
    )
    obj = ws.registry_object("models", "m") or {}
    assert obj["aliases"]["production"] == 2


def wait_until_only(gateway: Served, version: str) -> None:
    """Until ten requests in a row are answered by ``version`` (routes are polled)."""
    gateway.wait_for(
        lambda: all(
            gateway.post("/endpoints/m/invocations", {"instances": ROWS}).headers.get(
                "x-mlx-version"
            )
            == version
            for _ in range(10)
        ),
        what=f"v{version} serving everything",
    )


def test_a_failing_candidate_aborts_and_stable_keeps_serving(served: Any) -> None:
    ws, gateway, _v1 = served
    with (ws.root / "model.joblib").open("wb") as fh:
        pickle.dump(Crashy(width=4), fh)  # loads, then fails every prediction
    report = ws.apply()
    assert report is not None and report.ok, ws.output
    with Traffic(gateway) as traffic:
        result = _drive(ws)
    assert result.phase == "aborted" and "error_rate" in result.message, result
    assert any(s >= 500 and r == "candidate" for s, r, _ in traffic.replies)
    wait_until_only(gateway, "1")
    obj = ws.registry_object("models", "m") or {}
    assert obj["aliases"]["production"] == 1


def _train_wider(path: Path) -> None:
    """A candidate that expects five columns where stable takes four: every request the
    callers send (four values) is one it refuses with a 400 — and it never fails with 5xx."""
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    x = rng.normal(size=(200, 5))
    joblib.dump(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), path)


def test_a_candidate_that_refuses_what_stable_accepts_is_aborted(served: Any) -> None:
    """Issue 18, item 1: no 5xx at all, every answer a 400 — the client-error comparison
    (on by default) aborts it; it is never promoted."""
    ws, gateway, _v1 = served
    _train_wider(ws.root / "model.joblib")
    report = ws.apply()
    assert report is not None and report.ok, ws.output
    with Traffic(gateway) as traffic:
        result = _drive(ws)
    refused = [s for s, r, _ in traffic.replies if r == "candidate"]
    assert refused and all(400 <= s < 500 for s in refused), refused
    assert all(s == 200 for s, r, _ in traffic.replies if r == "stable")
    assert result.phase == "aborted", result
    assert "client_error_rate" in result.message and "breaches max_drop 0.01" in result.message
    assert "error_rate 0 (0/" in result.message  # the 5xx count saw nothing wrong
    wait_until_only(gateway, "1")
    obj = ws.registry_object("models", "m") or {}
    assert obj["aliases"]["production"] == 1
    assert ws.outputs("rollouts.m")["released_version"] == 1
