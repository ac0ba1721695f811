"""``rollout status|promote|abort|retry|run``: drive and inspect progressive rollouts."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

JSON_HELP = "Machine-readable output."
REASON_HELP = "Why: recorded in the state version and the rollout's history (default: who did it)."


def register(cli: click.Group, common: Callable[..., Any]) -> None:
    @cli.group()
    def rollout() -> None:
        """Drive and inspect rollouts (canary, shadow, A/B) that apply started."""

    @rollout.command()
    @common
    @click.argument("name")
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @click.pass_context
    def status(ctx: click.Context, name: str, as_json: bool) -> None:
        """Step n/m, desired vs live weights, the last analyses, what comes next."""
        from cli.app import session_for
        from cli.live import live_traffic
        from cli.render.rollout import render_status
        from readmodels.rollout import status_of

        session = session_for(ctx)
        reader = session.reader()
        data = status_of(reader, name, live_traffic(session, reader))
        if as_json:
            click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
        else:
            click.echo(render_status(data), nl=False)

    def _request(
        ctx: click.Context, name: str, request: str, reason: str | None, as_json: bool
    ) -> None:
        from cli.app import session_for
        from engine.workflows.rollouts import step

        operation = "rollout-" + request.split("-")[0]
        result = step(
            session_for(ctx),
            name,
            operation=operation,
            request=request,
            reason=reason,
            echo=lambda line: click.echo(line, err=as_json),
        )
        _report(result, as_json)

    def request_command(f: Callable[..., Any]) -> Callable[..., Any]:
        """What promote, abort and retry share: NAME, --reason, --json."""
        for decorate in (
            click.pass_context,
            click.option("--json", "as_json", is_flag=True, help=JSON_HELP),
            click.option("--reason", metavar="TEXT", help=REASON_HELP),
            click.argument("name"),
            common,
        ):
            f = decorate(f)
        return rollout.command()(f)

    @request_command
    @click.option("--full", is_flag=True, help="Skip the remaining steps: 100% at once.")
    def promote(
        ctx: click.Context, name: str, full: bool, reason: str | None, as_json: bool
    ) -> None:
        """Go on to the next step now (a manual pause, an inconclusive analysis)."""
        _request(ctx, name, "promote-full" if full else "promote", reason, as_json)

    @request_command
    def abort(ctx: click.Context, name: str, reason: str | None, as_json: bool) -> None:
        """Candidate weight 0 now; stable serves everything; the alias stays."""
        _request(ctx, name, "abort", reason, as_json)

    @request_command
    def retry(ctx: click.Context, name: str, reason: str | None, as_json: bool) -> None:
        """Start an aborted or paused rollout again from its first step."""
        _request(ctx, name, "retry", reason, as_json)

    @rollout.command()
    @common
    @click.argument("name", required=False)
    @click.option("--once", is_flag=True, help="One pass, then exit (for a schedule).")
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @click.pass_context
    def run(ctx: click.Context, name: str | None, once: bool, as_json: bool) -> int:
        """Drive NAME (default: every rollout in progress) until it completes, aborts or
        waits for a person. Exit 1 if one aborted."""
        from cli.app import EXIT_ERROR, EXIT_OK, session_for
        from controller.state import Phase
        from engine.workflows.rollouts import run as drive

        results = drive(
            session_for(ctx),
            [name] if name else None,
            lambda line: click.echo(line, err=as_json),
            max_passes=1 if once else None,
        )
        for result in results:
            if as_json:
                _report(result, as_json)
            elif result.waiting:  # the steps were said as they were taken: what is left to do
                click.echo(result.closing_line())
        if not results and not as_json:
            click.echo("No rollout is in progress.")
        return EXIT_ERROR if any(r.phase == Phase.ABORTED for r in results) else EXIT_OK


def _report(result: Any, as_json: bool) -> None:
    """The result as JSON, or the one line its events did not say already."""
    if as_json:
        from dataclasses import asdict

        click.echo(json.dumps(asdict(result), sort_keys=True, default=str))
        return
    line = result.closing_line()
    if line:
        click.echo(line)
