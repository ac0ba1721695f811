"""A live data-drift monitor over what a real `mlx serve` logged, on SQLite and on PostgreSQL.

The gap test_refresh_live leaves: there the log is written with ``inference.writer``; here every
row reaches the log as a client's request through the gateway, during a canary rollout.

The traffic shifts half-way. First 40 requests of normal rows, answered by the only version
there is (stable). Then the canary goes live at 50 % and the client sends 80 requests of rows
whose ``amount`` is shifted by 0.4 reference standard deviations, each with its own sticky key
(``x-mlx-key``): the gateway's split hashes the key, so which variant answers each request is
fixed by the seeded keys, and the client records what answered from the response headers.
The stable slice is then about half normal, half shifted — its normed Wasserstein distance
about 0.2 — while the candidate's slice is all shifted — about 0.4 — against the monitor's
threshold 0.3. The test asserts that design from the rows the client sent (scipy, on the raw
values) before it asserts the monitor's verdicts, and it asserts the monitor's statistic per
slice equals ``analysis.drift`` on the rows the client saw that variant answer: the gateway,
the log and the count in the store lost or misattributed nothing.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.alerts.conftest import Channel
from tests.conftest import Run, write_spec
from tests.gateway.support import Served

pytestmark = pytest.mark.slow

COLUMNS = ["amount", "age"]
AMOUNT, AMOUNT_SD, AGE, AGE_SD = 100.0, 10.0, 40.0, 5.0
#: the shift of ``amount`` once the canary is live, in reference standard deviations
SHIFT = 0.4
THRESHOLD = 0.3
#: how far each slice's raw statistic must be from the threshold for the design to hold
MARGIN = 0.05
ROWS_PER_REQUEST = 10
NORMAL_REQUESTS, SHIFTED_REQUESTS = 40, 80


def _spec(root: Path, hook: str) -> Path:
    spec = write_spec(
        root,
        {
            "serve.yaml": f"""
                datasets:
                  ref: {{uri: data/ref.csv, format: csv, owner: team-data, description: reference}}
                models:
                  m: {{artifact: model.joblib, flavor: sklearn, owner: team-ml}}
                alerts:
                  hook: {{type: webhook, url: "{hook}", timeout_s: 2, owner: team-ml}}
                  rollout_log: {{type: file, path: .mlx/alerts.jsonl, owner: team-ml}}
                endpoints:
                  m: {{serves: "${{models.m}}", owner: team-ml, log: {{payloads: 1.0}}}}
                rollouts:
                  m:
                    subject: ${{models.m}}
                    endpoint: ${{endpoints.m}}
                    requires: []
                    strategy: canary
                    steps: [{{weight: 50, pause: manual}}, {{weight: 100}}]
                    analysis: {{error_rate: {{max: 0.05}}, min_requests: 10}}
                    alert: ${{alerts.rollout_log}}
                    owner: team-ml
                monitors:
                  live:
                    type: data_drift
                    target: ${{endpoints.m}}
                    reference: ${{datasets.ref}}
                    features: [amount, age]
                    method: wasserstein
                    threshold: {THRESHOLD}
                    window: 1h
                    alert: ${{alerts.hook}}
                    owner: team-ml
            """,
        },
    )
    rng = random.Random(1)
    (spec / "data").mkdir(exist_ok=True)
    with (spec / "data" / "ref.csv").open("w", newline="") as out:
        w = csv.writer(out)
        w.writerow(COLUMNS)
        for _ in range(2000):
            w.writerow([round(rng.gauss(AMOUNT, AMOUNT_SD), 4), round(rng.gauss(AGE, AGE_SD), 4)])
    return spec


def _train(path: Path, seed: int) -> None:
    """A model fitted on a DataFrame, so it takes ``amount`` and ``age`` by name."""
    import joblib
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {"amount": rng.normal(AMOUNT, AMOUNT_SD, 300), "age": rng.normal(AGE, AGE_SD, 300)}
    )
    y = ((x["amount"] - AMOUNT) + seed * (x["age"] - AGE) > 0).astype(int)
    joblib.dump(LogisticRegression().fit(x, y), path)


def _rows(rng: random.Random, shift: float) -> list[list[float]]:
    return [
        [
            round(rng.gauss(AMOUNT + shift * AMOUNT_SD, AMOUNT_SD), 4),
            round(rng.gauss(AGE, AGE_SD), 4),
        ]
        for _ in range(ROWS_PER_REQUEST)
    ]


class Client:
    """Sends batches of rows, each request with its own seeded sticky key; keeps the rows each
    (variant, version) answered, as the response headers said."""

    def __init__(self, gateway: Served, seed: int):
        self.gateway = gateway
        self.rng = random.Random(seed)
        self.answered: dict[tuple[str, str], list[list[float]]] = {}
        self.requests: dict[tuple[str, str], int] = {}

    def send(self, shift: float) -> tuple[str, str]:
        rows = _rows(self.rng, shift)
        key = f"caller-{self.rng.getrandbits(64):016x}"
        reply = self.gateway.post(
            "/endpoints/m/invocations",
            {"dataframe_split": {"columns": COLUMNS, "data": rows}},
            headers={"x-mlx-key": key},
        )
        assert reply.status == 200, reply
        assert len(reply.json()["predictions"]) == ROWS_PER_REQUEST
        who = (reply.headers["x-mlx-variant"], reply.headers["x-mlx-version"])
        self.answered.setdefault(who, []).extend(rows)
        self.requests[who] = self.requests.get(who, 0) + 1
        return who

    @property
    def total(self) -> int:
        return sum(self.requests.values())


def _health(gateway: Served) -> dict[str, Any]:
    reply = gateway.get("/healthz")
    assert reply.status == 200, reply
    return dict(reply.json())


def _wait_logged(gateway: Served, n: int) -> None:
    """Until the gateway's log writer has written ``n`` records and holds none pending."""

    def done() -> bool:
        log = _health(gateway)["log"]
        return bool(log["written"] >= n and log["pending"] == 0 and log["dropped"] == 0)

    gateway.wait_for(done, what=f"{n} records written to the inference log")


def _canary_live(gateway: Served) -> bool:
    serving = _health(gateway)["endpoints"]["m"]["serving"]
    return bool(serving["candidate"] and serving["weight"] == 50)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The state (and so the inference log: the same database) on SQLite or PostgreSQL."""
    if request.param == "sqlite":
        return {}
    return {"MLX_STATE": str(request.getfixturevalue("pg_url"))}


def test_drift_of_the_canarys_traffic_is_found_in_the_log_serve_wrote_and_attributed(
    tmp_path: Path,
    mlx_m: Callable[..., Run],
    channel: Channel,
    store_env: dict[str, str],
) -> None:
    from scipy.stats import wasserstein_distance

    from analysis.drift import count, judge_feature
    from providers.monitor.reference import load_profile

    spec = _spec(tmp_path / "spec", channel.url)
    _train(spec / "model.joblib", seed=1)
    applied = mlx_m(["apply", "--yes"], spec, env=store_env)
    assert applied.code == 0, applied

    gateway = Served(spec, env=store_env, poll=0.1).wait_ready()
    try:
        want_log = "log postgresql" if store_env else "log sqlite"
        assert want_log in gateway.output(), gateway.output()
        client = Client(gateway, seed=7)
        before = {client.send(0.0) for _ in range(NORMAL_REQUESTS)}
        assert len(before) == 1, before
        ((stable_variant, stable_version),) = before
        assert stable_variant == "stable"

        _train(spec / "model.joblib", seed=3)  # a new version: the canary starts at 50 %
        canary = mlx_m(["apply", "--yes"], spec, env=store_env)
        assert canary.code == 0 and "weight 50, paused" in canary.out, canary
        gateway.wait_for(lambda: _canary_live(gateway), what="the canary live at 50 %")
        for _ in range(SHIFTED_REQUESTS):
            client.send(SHIFT)
        _wait_logged(gateway, client.total)
    finally:
        assert gateway.stop() == 0, gateway.output()

    stable = (stable_variant, stable_version)
    candidates = [who for who in client.answered if who[0] == "candidate"]
    assert len(candidates) == 1 and set(client.answered) == {stable, candidates[0]}
    candidate = candidates[0]
    assert candidate[1] != stable_version

    # The design, from the rows the client sent: the stable slice stays under the threshold
    # (half its rows normal), the candidate's is over it (all shifted).
    with (spec / "data" / "ref.csv").open() as fh:
        reference = [float(r["amount"]) for r in csv.DictReader(fh)]
    ref_mean = sum(reference) / len(reference)
    ref_sd = (sum((x - ref_mean) ** 2 for x in reference) / len(reference)) ** 0.5

    def raw(who: tuple[str, str]) -> float:
        values = [row[0] for row in client.answered[who]]
        return float(wasserstein_distance(values, reference)) / ref_sd

    assert raw(stable) <= THRESHOLD - MARGIN, raw(stable)
    assert raw(candidate) >= THRESHOLD + MARGIN, raw(candidate)

    run = mlx_m(["refresh", "--monitor", "live", "--detailed-exitcode"], spec, env=store_env)
    assert run.code == 2, run
    line = f"monitors.live: firing (drift in amount) in variant candidate version {candidate[1]};"
    assert line in run.out, run
    assert "variant stable" not in run.out, run

    shown = mlx_m(["show", "monitors.live", "--json"], spec, env=store_env)
    assert shown.code == 0, shown
    doc = json.loads(shown.out)
    latest = doc["monitor"]["latest"]
    assert latest["state"] == "firing"
    slices = {(s["variant"], s["version"]): s for s in latest["slices"]}
    assert set(slices) == {stable, candidate}
    assert slices[candidate]["drifted_features"] == ["amount"]
    assert slices[candidate]["breach"] is True
    assert slices[stable]["drifted_features"] == []
    assert slices[stable]["breach"] is False
    assert slices[candidate]["rollout_steps"] == ["rollouts.m step 1/2 at 50 %"]
    assert slices[stable]["rollout_steps"] == []  # stable's version is no candidate
    for who in (stable, candidate):
        assert slices[who]["requests"] == client.requests[who]

    # Each slice's statistic is analysis.drift's on the rows the client saw that variant answer,
    # and the raw statistic lies within the range the bins give.
    profile = load_profile(spec / ".mlx" / doc["outputs"]["profile"])
    recorded = {(s["variant"], s["version"]): s for s in doc["outputs"]["last_run"]["slices"]}
    for who in (stable, candidate):
        for i, name in enumerate(COLUMNS):
            values = [row[i] for row in client.answered[who]]
            want = judge_feature(
                profile.features[name],
                count(values, profile.features[name]),
                method="wasserstein",
                threshold=THRESHOLD,
            )
            got = recorded[who]["features"][name][0]
            assert got["n_cur"] == len(values) == want.n_cur
            assert got["statistic"] == pytest.approx(want.statistic, rel=1e-9, abs=1e-12)
            assert got["drifted"] is want.drifted is (who == candidate and name == "amount")
        low, high = recorded[who]["features"]["amount"][0]["bounds"]
        assert low - 1e-9 <= raw(who) <= high + 1e-9, (who, low, raw(who), high)

    # One alert, naming the candidate's version; the stable version's alert never fired.
    assert len(channel.requests) == 1, channel.requests
    body = channel.requests[0]["json"]
    assert body["status"] == "firing"
    (alert,) = body["alerts"]
    assert alert["labels"]["resource"] == "monitors.live"
    assert alert["labels"]["version"] == candidate[1]
    assert alert["labels"]["signal"] == "data_drift"
    # the slice names the rollout step the candidate served in (from the rollout's events)
    finding = (
        f"variant candidate version {candidate[1]} (during rollouts.m step 1/2 at 50 %): "
        "amount: wasserstein"
    )
    assert finding in alert["annotations"]["description"], alert

    # Still firing on the next run: never twice for one state.
    again = mlx_m(["refresh", "--monitor", "live", "--detailed-exitcode"], spec, env=store_env)
    assert again.code == 2, again
    assert len(channel.requests) == 1, channel.requests
