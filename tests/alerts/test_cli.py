"""End to end with the real `mlx`: refresh drift fires through the lifecycle and its outbox —
a channel that fails keeps the alert (listed by `mlx alerts`), a later run delivers it once,
the repair resolves it once; `mlx alerts silence` and `mlx alerts test`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.alerts.conftest import Channel
from tests.conftest import BASIC, run_mlx, write_spec
from tests.support.registry_rows import read_record, write_record


@pytest.fixture
def spec(tmp_path: Path, channel: Channel) -> Path:
    files = {
        **BASIC,
        "rollout.yaml": """
            rollouts:
              fraud:
                subject: ${models.fraud}
                alias: production
                owner: team-ml
        """,
        "hook.yaml": f"""
            alerts:
              hook:
                type: webhook
                url: {channel.url}
                timeout_s: 0.5
                owner: team-ml
        """,
        "mlx.yaml": """
            mlx:
              drift_alerts: [alerts.hook]
        """,
    }
    spec = write_spec(tmp_path / "spec", files)
    assert run_mlx(["apply", "--yes"], spec).code == 0
    (spec / "model.bin").write_text("weights-v2")  # version 2, released to production
    assert run_mlx(["apply", "--yes"], spec).code == 0
    return spec


def move_alias(spec: Path, to: int) -> None:
    registry = spec / ".mlx" / "registry"
    data = read_record(registry, "models", "fraud")
    data["object"]["aliases"]["production"] = to
    write_record(registry, "models", "fraud", data)


def alerts_json(spec: Path) -> dict[str, Any]:
    result = run_mlx(["alerts", "--json"], spec)
    assert result.code == 0, result
    return json.loads(result.out)  # type: ignore[no-any-return]


def time_passes(spec: Path) -> None:
    """The backoff elapsed: every queued delivery is due (instead of sleeping 30 s)."""
    with sqlite3.connect(spec / ".mlx" / "state.db") as conn:
        conn.execute("UPDATE mlx_alert_outbox SET next_attempt_at = 0 WHERE status = 'pending'")


def test_refresh_drift_is_kept_retried_delivered_once_and_resolved_once(
    spec: Path, channel: Channel
) -> None:
    move_alias(spec, 1)
    channel.modes = [500]
    found = run_mlx(["refresh", "--detailed-exitcode"], spec)
    assert found.code == 2, found
    assert "Warning: could not alert alerts.hook" in found.err and "HTTP 500" in found.err
    assert "secret-token" not in found.err

    view = alerts_json(spec)
    assert [a["key"] for a in view["firing"]] == ["rollouts.fraud/drift"]
    assert view["firing"][0]["owner"] == "team-ml"
    assert view["firing"][0]["investigate"] == "mlx plan --target rollouts.fraud"
    [kept] = view["undelivered"]
    assert kept["status"] == "retrying" and kept["attempts"] == 1
    assert "HTTP 500" in kept["last_error"]
    text = run_mlx(["alerts"], spec)
    assert "Undelivered (1):" in text.out and "rollouts.fraud/drift -> alerts.hook" in text.out

    # the next refresh, before the backoff: the drift is still firing, nothing new is sent
    assert run_mlx(["refresh"], spec).code == 0
    assert len(channel.requests) == 1
    time_passes(spec)
    assert run_mlx(["refresh"], spec).code == 0
    assert len(channel.delivered) == 1 and len(channel.requests) == 2
    body = channel.delivered[0]["json"]
    assert body["version"] == "4" and body["status"] == "firing"
    assert body["receiver"] == "alerts.hook" and body["groupKey"] == "rollouts.fraud/drift"
    labels = body["alerts"][0]["labels"]
    assert labels["resource"] == "rollouts.fraud" and labels["owner"] == "team-ml"
    assert "released_version: 2 -> 1" in body["alerts"][0]["annotations"]["description"]
    keys = {r["headers"]["Idempotency-Key"] for r in channel.requests}
    assert len(keys) == 1  # the retry is the same delivery
    assert alerts_json(spec)["undelivered"] == []

    # repaired: one resolved message, then quiet
    assert run_mlx(["apply", "--yes"], spec).code == 0
    assert run_mlx(["refresh", "--detailed-exitcode"], spec).code == 0
    assert run_mlx(["refresh"], spec).code == 0
    statuses = [r["json"]["status"] for r in channel.delivered]
    assert statuses == ["firing", "resolved"]
    view = alerts_json(spec)
    assert view["firing"] == [] and view["undelivered"] == []


def test_a_silenced_drift_is_recorded_not_sent(spec: Path, channel: Channel) -> None:
    done = run_mlx(
        ["alerts", "silence", "rollouts.fraud/drift", "--for", "2h", "--reason", "migration"],
        spec,
    )
    assert done.code == 0, done
    assert "Silenced rollouts.fraud/drift until" in done.out and "no alert matches" in done.out
    move_alias(spec, 1)
    assert run_mlx(["refresh", "--detailed-exitcode"], spec).code == 2
    assert channel.requests == []
    view = alerts_json(spec)
    assert view["firing"][0]["silenced"] is True and view["undelivered"] == []
    assert view["silenced"][0]["reason"] == "migration"
    assert view["silenced"][0]["who"] == "tester"
    with sqlite3.connect(spec / ".mlx" / "state.db") as conn:
        rows = conn.execute("SELECT status, kind FROM mlx_alert_outbox").fetchall()
    assert rows == [("suppressed", "firing")]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["silence", "not a key", "--for", "2h"], "is not an alert key"),
        (["silence", "rollouts.fraud/drift", "--for", "soon"], "--for 'soon'"),
        (["test", "nope"], "no alert channel alerts.nope"),
    ],
)
def test_bad_input_is_one_clear_error(spec: Path, args: list[str], error: str) -> None:
    result = run_mlx(["alerts", *args], spec)
    assert result.code == 1 and error in result.err, result
    assert alerts_json(spec)["silenced"] == []


def test_alerts_test_sends_now_and_fails_with_the_error(spec: Path, channel: Channel) -> None:
    sent = run_mlx(["alerts", "test", "hook"], spec)
    assert sent.code == 0, sent
    [request] = channel.requests
    assert request["json"]["alerts"][0]["labels"]["alertname"] == "test"
    assert request["headers"]["Idempotency-Key"]
    channel.modes = [403]
    failed = run_mlx(["alerts", "test", "alerts.hook"], spec)
    assert failed.code == 1
    assert "the test message to alerts.hook failed" in failed.err and "HTTP 403" in failed.err
    assert run_mlx(["alerts", "test", "oncall"], spec).code == 0  # the file channel
    lines = (spec / "alerts.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["alert"]["labels"]["signal"] == "test"
