"""``mlx alerts [silence KEY --for D [--reason R]] [test CHANNEL]``: the alert lifecycle's
view (firing, pending, undelivered, silenced) and its two actions."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import click


def register(cli: click.Group, common: Callable[..., Any]) -> None:
    @cli.group(invoke_without_command=True)
    @common
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    @click.pass_context
    def alerts(ctx: click.Context, as_json: bool) -> None:
        """Firing, pending, undelivered and silenced alerts."""
        if ctx.invoked_subcommand is not None:
            return
        from cli.app import session_for
        from engine.alerting import overview

        session = session_for(ctx)
        view = overview(_store(session), time.time())
        if as_json:
            click.echo(json.dumps(view, indent=2, sort_keys=True))
            return
        click.echo("\n".join(render(view)))

    @alerts.command("silence")
    @common
    @click.argument("key")
    @click.option("--for", "duration", required=True, help="How long: 2h, 30m, 1d.")
    @click.option("--reason", default=None, help="Why (shown by `mlx alerts`).")
    @click.pass_context
    def silence(ctx: click.Context, key: str, duration: str, reason: str | None) -> None:
        """Silence an alert (KEY, or a prefix ending in *): its notifications are recorded
        as suppressed, not sent, until the silence ends."""
        from cli.app import session_for
        from engine import alerting

        session = session_for(ctx)
        made, matched = alerting.silence(
            _store(session), key, duration, reason, session.actor, time.time()
        )
        until = alerting.iso(made.until)
        click.echo(f"Silenced {key} until {until}" + (f" ({reason})" if reason else "") + ".")
        if not matched:
            click.echo(f"Note: no alert matches {key} yet; the silence applies when one does.")

    @alerts.command("test")
    @common
    @click.argument("channel")
    @click.pass_context
    def test(ctx: click.Context, channel: str) -> None:
        """Send a test message to CHANNEL now; exit 1 with the error if it fails."""
        from cli.app import session_for
        from common.diagnostics import MlxError, did_you_mean
        from contract import ProviderError
        from engine.alerting import Alerting
        from engine.plugins import ProviderSet

        address = channel if channel.startswith("alerts.") else f"alerts.{channel}"
        session = session_for(ctx)
        channels = [a for a in session.spec.decls if a.startswith("alerts.")]
        if address not in channels:
            raise MlxError(f"no alert channel {address}{did_you_mean(address, channels)}")
        providers = ProviderSet.for_session(session)
        try:
            Alerting(_store(session), providers.context.peers).test(address)
        except (ProviderError, OSError) as exc:
            raise MlxError(f"the test message to {address} failed: {exc}") from exc
        finally:
            providers.close()
        click.echo(f"Sent a test message to {address}.")


def _store(session: Any) -> Any:
    from state.alerting import AlertStore

    return AlertStore(session.store.engine, session.workspace)


def render(view: dict[str, Any]) -> list[str]:
    """The text of ``mlx alerts``: one block per list, empty lists said so."""
    lines: list[str] = []
    for title, key in (("Firing", "firing"), ("Pending", "pending")):
        items = view[key]
        lines.append(f"{title} ({len(items)}):")
        for a in items:
            hush = "  [silenced]" if a["silenced"] else ""
            lines.append(f"  {a['key']}  {a['condition']} since {a['since']}{hush}")
            if a.get("title"):
                lines.append(
                    f"      {a['title']}" + (f" (owner: {a['owner']})" if a["owner"] else "")
                )
            if a.get("investigate"):
                lines.append(f"      investigate: {a['investigate']}")
    undelivered = view["undelivered"]
    lines.append(f"Undelivered ({len(undelivered)}):")
    for u in undelivered:
        when = f", next attempt {u['next_attempt_at']}" if u["next_attempt_at"] else ""
        lines.append(
            f"  {u['key']} -> {u['channel']}  {u['kind']}: {u['status']} "
            f"({u['attempts']} attempt(s){when})"
        )
        if u["last_error"]:
            lines.append(f"      last error: {u['last_error']}")
    silenced = view["silenced"]
    lines.append(f"Silenced ({len(silenced)}):")
    for s in silenced:
        why = f": {s['reason']}" if s["reason"] else ""
        lines.append(f"  {s['matcher']} until {s['until']} by {s['who']}{why}")
    return lines
