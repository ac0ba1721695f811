"""The canary of test_canary, on the SageMaker provider against moto's server.

The engine drives the rollout in-process, as in test_canary; the endpoint is a
SageMaker endpoint (moto's, with ``UpdateEndpoint`` added by
``tests.providers.moto_sagemaker``) and the traffic the controller judges is
what SageMaker would report: CloudWatch ``AWS/SageMaker`` metrics per
``EndpointName``/``VariantName``, put with ``PutMetricData``.

**Time resolution.** The controller judges the window since its last look;
the provider counts the CloudWatch data points stamped inside it. moto takes
a request's start and end in whole seconds and starts a period at the first
data point it finds, so a window is read back exactly only when no data point
of an earlier window lies in the second it starts in. So here the pauses are
1 s (real CloudWatch stores SageMaker's metrics per minute: a real rollout's
pauses are minutes, docs/providers.md), and each window's traffic is stamped
at the window's first instant — the ``window_from`` the controller recorded.
Every look's request counts are then asserted exactly: a provider counting
traffic from outside the window fails them.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from engine.workflows import rollouts
from providers.aws.session import make_client
from tests.providers.conftest import SAGEMAKER_IMAGE as IMAGE
from tests.providers.conftest import SAGEMAKER_ROLE as ROLE
from tests.providers.conftest import aws_env, sagemaker_moto  # noqa: F401 (fixtures)
from tests.release.test_release_safety import SPEC
from tests.rollouts.conftest import canary_rollout
from tests.support.harness import Workspace

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("aws_env")]

#: Per variant per window: above the analysis' min_requests (20).
REQUESTS = 30

ROLLOUT = canary_rollout(pause="1s", endpoint_provider="sm")


class SageMakerCanary:
    """A spec dir whose endpoint is on moto's SageMaker, and AWS as somebody else sees it."""

    def __init__(self, ws: Workspace, moto: str, name_prefix: str):
        self.ws = ws
        self.endpoint_name = f"{name_prefix}m"
        self.sagemaker = make_client("sagemaker", region="us-east-1", endpoint_url=moto)
        self.cloudwatch = make_client("cloudwatch", region="us-east-1", endpoint_url=moto)
        self.splits: list[dict[str, float]] = []

    def shares(self) -> dict[str, float]:
        """Each production variant's share of requests in percent, from ``DescribeEndpoint``
        (SageMaker's weights are relative; moto leaves out a weight of 0)."""
        live = self.sagemaker.describe_endpoint(EndpointName=self.endpoint_name)
        weights = {
            v["VariantName"]: float(v.get("CurrentWeight", v.get("DesiredWeight", 0)))
            for v in live["ProductionVariants"]
        }
        total = sum(weights.values())
        return {name: round(100 * w / total, 2) for name, w in weights.items()}

    def state(self) -> dict[str, Any]:
        return self.ws.outputs("rollouts.m")

    def put_traffic(
        self, variant: str, requests: int, *, at: float, errors: int = 0, latency_ms: float = 20.0
    ) -> None:
        """What SageMaker publishes for ``requests`` a variant answered at ``at``."""
        dims = [
            {"Name": "EndpointName", "Value": self.endpoint_name},
            {"Name": "VariantName", "Value": variant},
        ]
        stamp = datetime.fromtimestamp(at, UTC)
        self.cloudwatch.put_metric_data(
            Namespace="AWS/SageMaker",
            MetricData=[
                {"MetricName": name, "Dimensions": dims, "Timestamp": stamp, "Value": value}
                for name, value in (("Invocations", requests), ("Invocation5XXErrors", errors))
            ]
            + [
                {
                    "MetricName": "ModelLatency",
                    "Dimensions": dims,
                    "Timestamp": stamp,
                    "Values": [latency_ms * 1000] * requests,  # µs, as SageMaker reports it
                    "Unit": "Microseconds",
                }
            ],
        )

    def drive(
        self, *, stable: int = REQUESTS, candidate: int = REQUESTS, errors: int = 0
    ) -> list[rollouts.PassResult]:
        """Drive the rollout to its end (or a pause for a person), feeding CloudWatch each
        window once: ``stable``/``candidate`` requests stamped at the window's start.

        ``self.splits`` gets the endpoint's shares after every pass that changed something.
        """
        session = self.ws.session()
        results: list[rollouts.PassResult] = []
        fed: float | None = None
        try:
            for _ in range(400):
                state = self.state()
                if state["phase"] == "progressing" and state["window_from"] != fed:
                    fed = float(state["window_from"])
                    self.put_traffic(_variant(state["stable"]), stable, at=fed)
                    self.put_traffic(_variant(state["candidate"]), candidate, at=fed, errors=errors)
                result = rollouts.step(session, "m")
                results.append(result)
                if result.events:
                    self.splits.append(self.shares())
                if result.done or result.waiting:
                    return results
                time.sleep(0.05)
        finally:
            session.close()
        raise AssertionError(f"the rollout never finished: {results[-1]}")

    def model_exists(self, model: str) -> bool:
        try:
            self.sagemaker.describe_model(ModelName=model)
        except self.sagemaker.exceptions.ClientError as exc:
            assert "Could not find model" in str(exc), exc
            return False
        return True


def _variant(outputs: dict[str, Any]) -> str:
    return f"v{outputs['version']}"


@pytest.fixture
def canary(tmp_path: Path, sagemaker_moto: str) -> SageMakerCanary:  # noqa: F811
    bucket = f"mlx-{uuid.uuid4().hex[:12]}"
    make_client("s3", region="us-east-1", endpoint_url=sagemaker_moto).create_bucket(Bucket=bucket)
    name_prefix = f"t{uuid.uuid4().hex[:6]}-"  # moto's server (and its CloudWatch) is shared
    provider = f"""
        providers:
          sm:
            type: sagemaker
            endpoint_url: {sagemaker_moto}
            region: us-east-1
            role_arn: {ROLE}
            image: {IMAGE}
            bucket: {bucket}
            name_prefix: {name_prefix}
            wait_timeout_s: 10
    """
    files = {k: v for k, v in SPEC.items() if k != "rollouts.yaml"}
    ws = Workspace(tmp_path / "spec").write(
        {**files, "sagemaker.yaml": provider, "rollout.yaml": ROLLOUT}
    )
    report = ws.apply()
    assert report is not None and report.ok, ws.output
    setup = SageMakerCanary(ws, sagemaker_moto, name_prefix)
    assert setup.shares() == {"v1": 100.0}
    return setup


def _production(ws: Workspace) -> int | None:
    obj = ws.registry_object("models", "m") or {}
    return (obj.get("aliases") or {}).get("production")


def _start_canary(canary: SageMakerCanary) -> str:
    """Register v2 and start releasing it; v1's SageMaker model name."""
    ws = canary.ws
    v1_model = ws.outputs("endpoints.m")["variants"]["v1"]["model_name"]
    before = time.time() - 2  # v1 served requests before the canary began (see the module)
    canary.put_traffic("v1", 500, at=before, errors=50, latency_ms=900.0)
    ws.write({"model.txt": "score=0.97"})
    report = ws.apply()
    assert report is not None and report.ok, ws.output
    assert ws.statuses()["rollouts.m"] == "in_progress"
    assert canary.shares() == {"v1": 90.0, "v2": 10.0}
    assert _production(ws) == 1, "the alias moves only when the rollout completes"
    return str(v1_model)


def test_a_healthy_canary_walks_every_step_on_sagemaker(canary: SageMakerCanary) -> None:
    ws = canary.ws
    v1_model = _start_canary(canary)
    v2_model = ws.outputs("endpoints.m")["variants"]["v2"]["model_name"]
    results = canary.drive()
    assert results[-1].phase == "completed", results[-1]
    assert canary.splits == [{"v1": 50.0, "v2": 50.0}, {"v2": 100.0}]
    looks = ws.outputs("rollouts.m")["looks"]
    assert [(look["step"], look["verdict"]) for look in looks] == [(1, "pass"), (2, "pass")]
    # each analysis judged its own window: not v1's traffic before the canary, not the
    # traffic of the step before
    assert [look["requests"] for look in looks] == [{"stable": REQUESTS, "candidate": REQUESTS}] * 2
    # SageMaker: v2 serves everything, v1's variant and model are gone
    assert canary.shares() == {"v2": 100.0}
    assert not canary.model_exists(v1_model) and canary.model_exists(v2_model)
    assert _production(ws) == 2
    out = ws.outputs("endpoints.m")
    assert out["stable_version"] == 2 and set(out["variants"]) == {"v2"}
    assert ws.refresh() == []
    assert not ws.plan().has_changes


def test_5xx_errors_abort_at_the_first_analysis(canary: SageMakerCanary) -> None:
    ws = canary.ws
    _start_canary(canary)
    v2_model = ws.outputs("endpoints.m")["variants"]["v2"]["model_name"]
    results = canary.drive(errors=6)  # 20% of the candidate's requests fail
    last = results[-1]
    assert last.phase == "aborted" and "error_rate" in last.message, last
    looks = ws.outputs("rollouts.m")["looks"]
    assert [(look["step"], look["verdict"]) for look in looks] == [(1, "fail")], looks
    assert looks[0]["requests"] == {"stable": REQUESTS, "candidate": REQUESTS}
    # SageMaker: v1 serves everything, v2's variant and model are gone
    assert canary.splits == [{"v1": 100.0}]
    assert not canary.model_exists(v2_model)
    assert _production(ws) == 1
    alerts = [json.loads(x) for x in (ws.root / ".mlx/alerts.jsonl").read_text().splitlines()]
    assert alerts[-1]["source"] == "rollouts.m" and alerts[-1]["owner"] == "team-ml"
    assert "error_rate" in alerts[-1]["text"] and "mlx rollout status m" in alerts[-1]["text"]
    assert ws.refresh() == []


def test_too_little_traffic_is_inconclusive_and_pauses(canary: SageMakerCanary) -> None:
    ws = canary.ws
    _start_canary(canary)
    results = canary.drive(stable=5, candidate=5)  # below min_requests: 20
    last = results[-1]
    assert last.phase == "paused" and last.waiting == "inconclusive", last
    assert "inconclusive" in last.message
    looks = ws.outputs("rollouts.m")["looks"]
    assert [look["requests"] for look in looks] == [{"stable": 5, "candidate": 5}]
    assert canary.shares() == {"v1": 90.0, "v2": 10.0}, "a pause holds the weights"
    assert _production(ws) == 1
    alerts = [json.loads(x) for x in (ws.root / ".mlx/alerts.jsonl").read_text().splitlines()]
    assert "paused" in alerts[-1]["title"] and "inconclusive" in alerts[-1]["text"]


def test_consecutive_windows_count_each_cloudwatch_minute_once() -> None:
    """What AWS returns for SageMaker's metrics: one data point per minute, stamped with the
    minute's start. The controller's windows follow one another; each minute is counted in
    exactly one of them — the one it starts in — however the windows are cut."""
    from providers.aws.sagemaker_metrics import window

    now = 1_800_000_000.0  # on the minute grid
    minutes = [{"Timestamp": datetime.fromtimestamp(now - 600 + 60 * k, UTC)} for k in range(10)]
    cuts = [now - 600, now - 590.5, now - 500.25, now - 480, now - 479.8, now - 300.001, now]
    counted = []
    for since, until in itertools.pairwise(cuts):
        win = window(since, until, now)
        assert win.period == 60 and win.start.timestamp() == since
        assert win.end.timestamp() >= until
        counted.append([p for p in minutes if win.holds(p)])
    assert [len(c) for c in counted] == [1, 1, 0, 1, 2, 5]
    assert sorted(p["Timestamp"] for c in counted for p in c) == [p["Timestamp"] for p in minutes]
    # a window of days asks for at most the 1,440 points one call may hold; an old one at
    # the period CloudWatch keeps that far back
    assert window(now - 30 * 86400, now - 29 * 86400, now).period == 300
    assert window(now - 86400 * 3, now, now).period == 180  # 4320 minutes / 1440
