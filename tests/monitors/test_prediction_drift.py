"""End to end with the real `mlx`: ``type: prediction_drift`` monitors compare what a model
answered (the inference log's ``outputs``, or a ``current`` dataset's prediction column) with
the reference's prediction column. A candidate version whose class balance shifts fires, one
webhook alert naming that version; the same traffic without a shift is ok; a batch of scores
that shifted fires with Wasserstein; a reference without the prediction column fails apply,
naming the column and the columns it has."""

from __future__ import annotations

import csv
import json
import random
import time
from pathlib import Path
from typing import Any

import pytest

from inference.records import InferenceRecord
from inference.store import open_log
from inference.writer import LogWriter
from providers.monitor.provider import features_of
from specs.monitors import Monitor
from tests.alerts.conftest import Channel
from tests.conftest import BASIC, write_spec


@pytest.mark.parametrize(
    ("kind", "features", "want"),
    [
        ("prediction_drift", [], ["prediction"]),  # the default prediction column
        ("prediction_drift", ["label", "score"], ["label", "score"]),
        ("data_drift", [], []),  # every reference column, decided when it is read
        ("data_drift", ["amount"], ["amount"]),
    ],
)
def test_features_of(kind: str, features: list[str], want: list[str]) -> None:
    spec = Monitor.model_validate(
        {"type": kind, "current": "${datasets.c}", "reference": "${datasets.r}",
         "features": features, "owner": "t"}
    )  # fmt: skip
    assert features_of(spec) == want


#: The reference's class balance: 10% fraud.
FRAUD = 0.1


def live_spec(tmp_path: Path, channel: Channel, column: str = "prediction") -> Path:
    spec = write_spec(
        tmp_path / "spec",
        {
            **BASIC,
            "serve.yaml": f"""
                datasets:
                  ref: {{uri: data/ref.csv, owner: team-data, description: scored reference}}
                endpoints:
                  fraud: {{serves: "${{models.fraud}}", owner: team-ml, log: {{payloads: 1.0}}}}
                alerts:
                  hook: {{type: webhook, url: "{channel.url}", timeout_s: 2, owner: team-ml}}
            """,
            "monitors.yaml": """
                monitors:
                  preds:
                    type: prediction_drift
                    target: ${endpoints.fraud}
                    reference: ${datasets.ref}
                    window: 1h
                    alert: ${alerts.hook}
                    owner: team-ml
            """,
        },
    )
    rng = random.Random(1)
    with (spec / "data" / "ref.csv").open("w", newline="") as out:
        w = csv.writer(out)
        w.writerow(["amount", column])
        for _ in range(2000):
            label = "fraud" if rng.random() < FRAUD else "legit"
            w.writerow([round(rng.gauss(100, 10), 3), label])
    return spec


def log(spec: Path, variant: str, version: str, fraud: float, n: int, seed: int) -> None:
    """``n`` requests answered by ``variant``/``version`` as `mlx serve` logs them (the list of
    predictions; a tenth of them answer two rows), ``fraud`` the share labelled fraud."""
    rng = random.Random(seed)
    store = open_log(f"sqlite:///{spec / '.mlx' / 'inference.db'}")
    writer = LogWriter(store, flush_interval=0.01)
    start = time.time() - 120
    for i in range(n):
        rows = 2 if i % 10 == 0 else 1
        labels = ["fraud" if rng.random() < fraud else "legit" for _ in range(rows)]
        record = InferenceRecord(
            request_id=f"{variant}-{i}",
            ts=start + i * 0.01,
            endpoint="fraud",
            variant=variant,
            subject="models.fraud",
            version=version,
            status=200,
            latency_ms=4.0,
            inputs={"dataframe_records": [{"amount": 100.0}] * rows},
            outputs=labels,
        )
        assert writer.submit(record) > 0
    assert writer.close()
    store.close()


def test_a_candidate_whose_class_balance_shifts_fires_naming_its_version(
    tmp_path: Path, channel: Channel, mlx_m: Any
) -> None:
    spec = live_spec(tmp_path, channel)
    applied = mlx_m(["apply", "--yes"], spec)
    assert applied.code == 0, applied
    log(spec, "stable", "1", FRAUD, 800, 2)
    log(spec, "candidate", "2", 0.4, 400, 3)  # the candidate flags four times as many

    run = mlx_m(["refresh", "--monitor", "preds", "--detailed-exitcode"], spec)
    assert run.code == 2, run
    assert "monitors.preds: firing (drift in prediction)" in run.out, run
    assert "variant candidate version 2" in run.out, run

    assert len(channel.delivered) == 1, channel.delivered  # one alert: the candidate's
    body = channel.delivered[0]["json"]
    text = json.dumps(body)
    assert body["status"] == "firing"
    assert [a["labels"].get("version") for a in body["alerts"]] == ["2"], body
    [finding] = body["details"]["findings"]
    assert finding.startswith("variant candidate version 2: prediction: jensenshannon "), body
    assert " >= 0.1 (effect jensenshannon " in finding, finding
    assert "prediction drift" in text and "team-ml" in text, text

    shown = json.loads(mlx_m(["show", "monitors.preds", "--json"], spec).out)["monitor"]
    slices = {(s["variant"], s["version"]): s for s in shown["latest"]["slices"]}
    assert slices[("candidate", "2")]["drifted_features"] == ["prediction"]
    assert slices[("stable", "1")]["drifted_features"] == []
    assert slices[("candidate", "2")]["requests"] == 400
    human = mlx_m(["show", "monitors.preds"], spec)
    assert human.code == 0 and "jensenshannon" in human.out, human

    again = mlx_m(["refresh", "--monitor", "preds", "--detailed-exitcode"], spec)
    assert again.code == 2 and len(channel.delivered) == 1  # still firing: not sent twice


def test_the_same_balance_is_ok(tmp_path: Path, channel: Channel, mlx_m: Any) -> None:
    spec = live_spec(tmp_path, channel)
    assert mlx_m(["apply", "--yes"], spec).code == 0
    log(spec, "stable", "1", FRAUD, 800, 4)
    log(spec, "candidate", "2", FRAUD, 400, 5)
    run = mlx_m(["refresh", "--monitor", "preds", "--detailed-exitcode", "--json"], spec)
    assert run.code == 0, run
    assert json.loads(run.out)["monitors"][0]["state"] == "ok", run
    assert channel.delivered == []


def test_outputs_not_inputs_are_counted(tmp_path: Path, channel: Channel, mlx_m: Any) -> None:
    """Requests whose answers were not kept (a failed call logs no outputs) leave the window
    without predictions: no_data, never ok — though their inputs were kept."""
    spec = live_spec(tmp_path, channel)
    assert mlx_m(["apply", "--yes"], spec).code == 0
    store = open_log(f"sqlite:///{spec / '.mlx' / 'inference.db'}")
    writer = LogWriter(store, flush_interval=0.01)
    for i in range(50):
        failed = InferenceRecord(
            request_id=f"r{i}", ts=time.time() - 60, endpoint="fraud", variant="stable",
            subject="models.fraud", version="1", status=500, latency_ms=2.0,
            inputs={"dataframe_records": [{"amount": 100.0}]}, error="boom",
        )  # fmt: skip
        assert writer.submit(failed) > 0
    assert writer.close()
    store.close()
    run = mlx_m(["refresh", "--monitor", "preds", "--detailed-exitcode", "--json"], spec)
    assert run.code == 0, run
    assert json.loads(run.out)["monitors"][0]["state"] == "no_data", run


def test_a_reference_without_the_prediction_column_fails_apply(
    tmp_path: Path, channel: Channel, mlx_m: Any
) -> None:
    spec = live_spec(tmp_path, channel, column="label")
    applied = mlx_m(["apply", "--yes"], spec)
    assert applied.code == 1, applied
    assert (
        "monitors.preds: datasets.ref has no column 'prediction' "
        "(its columns: 'amount', 'label')" in applied.err
    ), applied
    assert "Traceback" not in applied.err, applied
    assert not list((spec / ".mlx" / "monitors" / "profiles").glob("*.json"))


# -- batch -------------------------------------------------------------------------------------
def write_scores(path: Path, seed: int, mean: float, rows: int = 2000) -> None:
    rng = random.Random(seed)
    with path.open("w", newline="") as out:
        w = csv.writer(out)
        w.writerow(["id", "score"])
        for i in range(rows):
            w.writerow([i, round(min(max(rng.gauss(mean, 0.1), 0.0), 1.0), 6)])


def test_batch_scores_that_shift_fire_with_wasserstein(
    tmp_path: Path, channel: Channel, mlx_m: Any
) -> None:
    spec = write_spec(
        tmp_path / "spec",
        {
            "data.yaml": """
                datasets:
                  ref: {uri: data/ref.csv, owner: team-data, description: scored reference}
                  cur: {uri: data/cur.csv, owner: team-data, description: scored today}
            """,
            "hook.yaml": f"""
                alerts:
                  hook: {{type: webhook, url: "{channel.url}", timeout_s: 2, owner: team-ml}}
            """,
            "monitors.yaml": """
                monitors:
                  scores:
                    type: prediction_drift
                    reference: ${datasets.ref}
                    current: ${datasets.cur}
                    features: [score]
                    alert: ${alerts.hook}
                    owner: team-ml
            """,
        },
    )
    (spec / "data").mkdir(exist_ok=True)
    write_scores(spec / "data" / "ref.csv", 1, 0.3)
    write_scores(spec / "data" / "cur.csv", 2, 0.45)
    assert mlx_m(["apply", "--yes"], spec).code == 0

    run = mlx_m(["refresh", "--monitor", "scores", "--detailed-exitcode"], spec)
    assert run.code == 2, run
    assert "monitors.scores: firing (drift in score)" in run.out, run
    assert len(channel.delivered) == 1
    assert "score: wasserstein" in json.dumps(channel.delivered[0]["json"])

    write_scores(spec / "data" / "cur.csv", 3, 0.3)  # the same scores again: ok, resolved
    ok = mlx_m(["refresh", "--monitor", "scores", "--json"], spec)  # the file changed: not 2
    assert ok.code == 0 and json.loads(ok.out)["monitors"][0]["state"] == "ok", ok
    assert channel.delivered[-1]["json"]["status"] == "resolved"
