"""``mlx refresh``: an alert for each endpoint whose LLM answers could not be priced.

The gateway cannot page per request (a request must not wait on an alert channel, and a
burst would page once per answer); it logs ``cost_usd = null`` and counts
``mlx_gateway_unpriced_total``. ``mlx refresh`` — already the run that reads the world and
raises alerts (drift, monitors) — reads the log's last ``WINDOW_S`` and observes one alert per
endpoint, key ``endpoints.NAME/unpriced``, through the alert lifecycle: it fires while the
window holds unpriced answers (naming each model and how many), notifies the channels of
``mlx.cost_alerts`` (none listed: recorded, listed by ``mlx alerts``, not sent), and resolves
once the window holds none — a price added to the spec and ``mlx logs --reprice`` run, or a
day without such answers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from alerts import AlertKey, AlertState, Condition, Notify
from contract import AlertMessage

if TYPE_CHECKING:
    from engine.alerting import Alerting


class Unpriced(Protocol):
    """One endpoint's unpriced answers from one model (``inference.unpriced.Unpriced``)."""

    @property
    def endpoint(self) -> str: ...

    @property
    def model(self) -> str: ...

    @property
    def answers(self) -> int: ...

    @property
    def with_usage(self) -> int: ...


#: Reads the log's unpriced answers of a session's workspace since a time (``cli`` gives one:
#: the engine does not open the inference log itself).
UnpricedReader = Callable[[Any, float], Sequence[Unpriced]]

#: the alert's signal: ``endpoints.NAME/unpriced``
SIGNAL = "unpriced"
#: how far back a refresh looks for unpriced answers (a day: refreshes run hourly or daily)
WINDOW_S = 86_400.0


def observe(
    alerting: Alerting,
    found: Sequence[Unpriced],
    channels: Sequence[str],
    now: float,
) -> list[tuple[AlertKey, Notify]]:
    """Fire the alert of every endpoint in ``found``; resolve the ones no longer there."""
    by_endpoint: dict[str, list[Unpriced]] = {}
    for u in found:
        by_endpoint.setdefault(f"endpoints.{u.endpoint}", []).append(u)
    out: list[tuple[AlertKey, Notify]] = []
    for address, rows in sorted(by_endpoint.items()):
        key = AlertKey(address, SIGNAL)
        taken = alerting.observe(key, Condition.BREACH, _firing(address, rows), channels, now=now)
        if taken.notify is not None:
            out.append((key, taken.notify))
    for row in alerting.store.alerts():
        if row["signal"] != SIGNAL or row["state"] == AlertState.INACTIVE:
            continue
        if row["resource"] in by_endpoint:
            continue
        key = AlertKey(row["resource"], SIGNAL)
        taken = alerting.observe(key, Condition.OK, _resolved(row["resource"]), channels, now=now)
        if taken.notify is not None:
            out.append((key, taken.notify))
    return out


def _firing(address: str, rows: Sequence[Unpriced]) -> AlertMessage:
    total = sum(r.answers for r in rows)
    models = ", ".join(f"{r.model} ({r.answers})" for r in rows)
    no_usage = sum(r.answers - r.with_usage for r in rows)
    why = (
        f"; {no_usage} had no usage from the upstream" if no_usage else ""
    )  # a price cannot fix those
    return AlertMessage(
        title=f"{address}: {total} answer(s) with no price",
        text=f"{address}: {total} LLM answer(s) in the last {WINDOW_S / 3600:g} h have "
        f"cost_usd null (never counted as $0) — models: {models}{why}. Add the model to the "
        f"endpoint's `pricing`, apply, then `mlx logs {address.split('.', 1)[1]} --reprice`.",
        severity="warning",
        source=address,
        details={
            "models": {r.model: r.answers for r in rows},
            "without_usage": no_usage,
            "window_s": WINDOW_S,
        },
        investigate=f"mlx logs {address.split('.', 1)[1]} --summary",
    )


def _resolved(address: str) -> AlertMessage:
    return AlertMessage(
        title=f"{address}: every answer priced again",
        text=f"{address}: no unpriced LLM answer in the last {WINDOW_S / 3600:g} h.",
        severity="warning",
        source=address,
    )
