"""SNS through the alert outbox, on moto's server behind a proxy that fails on purpose: a
publish that fails is kept and retried by a later run, delivered once, then resolved."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from alerts import AlertKey, Condition
from contract import AlertMessage
from engine.alerting import Alerting
from providers.testing import FlakyProxy
from state.alerting import AlertStore, DeliveryStatus
from state.store import StateStore
from tests.alerts.conftest import Peers
from tests.providers.test_sns_provider import UNAVAILABLE, make, received, subscribe

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("aws_env")]

KEY = AlertKey("budgets.llm", "cost")
MESSAGE = AlertMessage(
    title="budgets.llm: 80% of the monthly limit spent",
    text="$80.00 of $100.00 (alert_at 0.8) since 2027-01-01",
    severity="warning",
    source="budgets.llm",
    owner="team-llm",
    investigate="mlx logs support --since 30d --summary",
)


def test_sns_publish_is_kept_retried_and_delivered_once(
    tmp_path: Path, moto_proxy: FlakyProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # one attempt per run: the outbox retries
    peers = Peers()
    spec = {"type": "sns", "topic": f"mlx-{uuid.uuid4().hex[:10]}", "owner": "team-llm"}
    peers.add("alerts.sns", make(tmp_path, moto_proxy.url, peers), spec)
    queue = subscribe(moto_proxy.url, peers.channels["alerts.sns"][1].outputs["topic_arn"])
    store = AlertStore(StateStore(f"sqlite:///{tmp_path}/state.db").engine, "default")
    service = Alerting(store, peers)

    service.observe(KEY, Condition.BREACH, MESSAGE, ["alerts.sns"], now=1000.0)
    moto_proxy.fail(1, status=503, body=UNAVAILABLE)
    assert len(service.deliver(1000.0).retrying) == 1
    [row] = store.outbox()
    assert row.status == DeliveryStatus.PENDING and row.last_error
    assert received(moto_proxy.url, queue) == []
    assert [r.id for r in service.deliver(row.next_attempt_at).delivered] == [row.id]
    service.observe(KEY, Condition.OK, MESSAGE, ["alerts.sns"], now=2000.0)
    service.deliver(2000.0)
    got = [json.loads(m["Message"]) for m in received(moto_proxy.url, queue)]
    assert [m["alert"]["status"] for m in got] == ["firing", "resolved"]
    assert got[0]["alert"]["key"] == "budgets.llm/cost"
    assert got[0]["alert"]["investigate"] == "mlx logs support --since 30d --summary"
