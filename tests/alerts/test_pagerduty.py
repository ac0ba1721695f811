"""PagerDuty Events API v2 through the outbox, against a local server checking the body:
trigger (dedup_key = the alert key), retried only on 429/5xx, then one resolve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from alerts import AlertKey, Condition
from contract import AlertMessage, Context
from engine.alerting import Alerting
from providers.pagerduty import PagerDutyProvider
from specs.alerts import PagerDutyAlert
from state.alerting import AlertStore, DeliveryStatus
from tests.alerts.conftest import Channel, Peers

KEY = AlertKey("monitors.fraud_drift", "data_drift", "3")
MESSAGE = AlertMessage(
    title="monitors.fraud_drift: data drift on models.fraud v3",
    text="amount: PSI 0.31 > 0.25",
    severity="critical",
    source="monitors.fraud_drift",
    owner="team-fraud",
    details={"psi": 0.31, "threshold": 0.25},
    investigate="mlx show monitors.fraud_drift",
)
T0 = 1_800_000_000.0


def pagerduty(tmp_path: Path, channel: Channel) -> Peers:
    peers = Peers()
    ctx = Context(root=tmp_path, data_dir=tmp_path / ".mlx", peers=peers)  # type: ignore[arg-type]
    spec = {
        "type": "pagerduty",
        "routing_key": "R0UT1NGKEY",
        "url": f"http://127.0.0.1:{channel.port}",
        "timeout_s": 0.5,
    }
    peers.add("alerts.pager", PagerDutyProvider({"type": "pagerduty"}, ctx), spec)
    return peers


def test_trigger_then_resolve_with_the_alert_key_as_dedup_key(
    tmp_path: Path, store: AlertStore, channel: Channel
) -> None:
    service = Alerting(store, pagerduty(tmp_path, channel))
    service.observe(KEY, Condition.BREACH, MESSAGE, ["alerts.pager"], now=T0)
    channel.modes = [503]
    assert len(service.deliver(T0).retrying) == 1  # a 5xx: kept for a later run
    service.deliver(T0 + 30)
    service.observe(KEY, Condition.OK, MESSAGE, ["alerts.pager"], now=T0 + 60)
    service.deliver(T0 + 60)
    assert [r["path"] for r in channel.requests] == ["/v2/enqueue"] * 3
    trigger, resolve = (r["json"] for r in channel.delivered)
    assert trigger == {
        "routing_key": "R0UT1NGKEY",
        "event_action": "trigger",
        "dedup_key": "monitors.fraud_drift@3/data_drift",
        "client": "mlx",
        "payload": {
            "summary": MESSAGE.title,
            "source": "monitors.fraud_drift",
            "severity": "critical",
            "timestamp": "2027-01-15T08:00:00Z",
            "component": "monitors.fraud_drift",
            "group": "team-fraud",
            "class": "data_drift",
            "custom_details": {
                "text": MESSAGE.text,
                "owner": "team-fraud",
                "investigate": "mlx show monitors.fraud_drift",
                "since": "2027-01-15T08:00:00Z",
                "labels": {
                    "alertname": "data_drift",
                    "resource": "monitors.fraud_drift",
                    "signal": "data_drift",
                    "version": "3",
                    "severity": "critical",
                    "owner": "team-fraud",
                },
                "psi": 0.31,
                "threshold": 0.25,
            },
        },
    }
    assert resolve == {
        "routing_key": "R0UT1NGKEY",
        "event_action": "resolve",
        "dedup_key": "monitors.fraud_drift@3/data_drift",
    }


@pytest.mark.parametrize(
    ("status", "final"), [(400, True), (403, True), (429, False), (502, False)]
)
def test_only_429_and_5xx_are_retried(
    tmp_path: Path, store: AlertStore, channel: Channel, status: int, final: bool
) -> None:
    service = Alerting(store, pagerduty(tmp_path, channel))
    service.observe(KEY, Condition.BREACH, MESSAGE, ["alerts.pager"], now=T0)
    channel.modes = [status]
    report = service.deliver(T0)
    [row] = store.outbox()
    assert (row.status == DeliveryStatus.FAILED) is final
    assert len(report.failed if final else report.retrying) == 1
    assert "R0UT1NGKEY" not in (row.last_error or "")


@pytest.mark.parametrize(
    ("key", "ok"),
    [("${env.PD_KEY}", True), ("R0UT1NGKEY", False), ("x-${env.PD_KEY}", False)],
)
def test_routing_key_is_an_env_secret_only(key: str, ok: bool) -> None:
    body: dict[str, Any] = {"type": "pagerduty", "routing_key": key}
    if ok:
        assert PagerDutyAlert.model_validate(body).routing_key == key
    else:
        with pytest.raises(ValueError, match=r"routing_key is a secret: write it as \$\{env"):
            PagerDutyAlert.model_validate(body)


def test_a_key_in_clear_is_refused_without_repeating_it(tmp_path: Path) -> None:
    """``mlx validate`` names the field and the line, exits 1, and its message does not
    repeat the key (the error may land in a CI log)."""
    from tests.conftest import run_mlx

    (tmp_path / "mlx.yaml").write_text(
        "alerts:\n  oncall:\n    type: pagerduty\n    routing_key: R0UT1NGKEYINCLEAR\n"
    )
    result = run_mlx(["validate"], tmp_path)
    assert result.code == 1
    first = result.err.splitlines()[0]
    assert "alerts.oncall.routing_key: routing_key is a secret" in first, result.err
    assert "R0UT1NGKEYINCLEAR" not in first
    assert "mlx.yaml:4" in result.err
