"""One-shot alerts (a rollout aborted) through the outbox: enqueued once, a failed delivery
raised to the controller *and* kept, delivered by a later run."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts import AlertKey
from contract import AlertMessage, ProviderError
from engine.alerting import Alerting, through_outbox
from state.alerting import AlertStore, DeliveryStatus
from tests.alerts.conftest import Channel, webhook_peers

ABORTED = AlertMessage(
    title="rollouts.fraud aborted: models.fraud v2",
    text="The rollout of models.fraud v2 was aborted: error_rate 0.08 > 0.01.",
    severity="critical",
    source="rollouts.fraud",
    owner="team-ml",
    key="rollouts.fraud@v2/rollout_aborted",
    labels={
        "alertname": "rollout_aborted",
        "resource": "rollouts.fraud",
        "signal": "rollout_aborted",
        "version": "v2",
        "severity": "critical",
        "owner": "team-ml",
    },
    investigate="mlx rollout status fraud",
)


def test_a_failed_rollout_alert_is_raised_kept_and_delivered_later(
    tmp_path: Path, store: AlertStore, channel: Channel
) -> None:
    peers = webhook_peers(tmp_path, channel)
    send = through_outbox(store.engine, store.workspace)
    channel.modes = ["429:5"]
    with pytest.raises(ProviderError, match=r"HTTP 429.*kept in the outbox"):
        send(peers, "alerts.oncall", ABORTED)
    [row] = store.outbox()
    assert row.status == DeliveryStatus.PENDING and row.alert_key == ABORTED.key
    report = Alerting(store, peers).deliver(row.next_attempt_at)
    assert [r.id for r in report.delivered] == [row.id]
    [sent] = channel.delivered
    body = sent["json"]
    assert body["groupKey"] == "rollouts.fraud@v2/rollout_aborted"
    assert body["alerts"][0]["annotations"]["investigate"] == "mlx rollout status fraud"
    assert sent["headers"]["Idempotency-Key"] == row.idempotency_key


def test_an_event_replayed_at_the_same_time_is_enqueued_once(
    tmp_path: Path, store: AlertStore, channel: Channel
) -> None:
    service = Alerting(store, webhook_peers(tmp_path, channel))
    key = AlertKey("rollouts.fraud", "rollout_aborted", "v2")
    assert service.event(key, ABORTED, ["alerts.oncall"], at=1000.0) == 1
    assert service.event(key, ABORTED, ["alerts.oncall"], at=1000.0) == 0
    assert len(store.outbox()) == 1
