"""``validate``, ``plan``, ``apply``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click


def register(cli: click.Group, common: Callable[..., Any]) -> None:
    @cli.command()
    @common
    @click.pass_context
    def validate(ctx: click.Context) -> None:
        """Load, validate, resolve and build the graph (no state touched)."""
        from engine import operations
        from engine.cli import session_for

        result = operations.validate(session_for(ctx))
        click.echo(
            f"Success! The spec is valid: {result.resources} resources in {result.files} "
            f"file(s), {result.edges} dependencies."
        )

    @cli.command()
    @common
    @click.option(
        "--detailed-exitcode",
        is_flag=True,
        help="Exit 0 when there are no changes, 2 when there are, 1 on error.",
    )
    @click.option(
        "--target",
        "targets",
        multiple=True,
        metavar="ADDR",
        help="Plan only ADDR and what it depends on (repeatable).",
    )
    @click.option(
        "--replace",
        "replace",
        multiple=True,
        metavar="ADDR",
        help="Plan to replace ADDR even if it has not changed (repeatable).",
    )
    @click.pass_context
    def plan(
        ctx: click.Context,
        detailed_exitcode: bool,
        targets: tuple[str, ...],
        replace: tuple[str, ...],
    ) -> int:
        """Show what apply would do."""
        import os

        from engine import plancache
        from engine.cli import EXIT_CHANGES, EXIT_OK, globals_of

        g = globals_of(ctx)
        plain = not (targets or replace)
        if plain:
            workspace = g.environment or os.environ.get("MLX_ENV") or "default"
            remembered = plancache.lookup(g.chdir.resolve(), workspace, g.state_url, os.environ)
            if remembered is not None:
                if g.debug:
                    click.echo("debug: nothing the plan depends on changed (plan memo)", err=True)
                click.echo(remembered, nl=False)
                return EXIT_OK

        from engine import operations
        from engine.cli import session_for
        from engine.plan import PlanOptions
        from engine.render_text import render_plan

        session = session_for(ctx)
        the_plan = operations.plan(
            session,
            PlanOptions(
                targets=list(targets), replace=list(replace), environment=session.workspace
            ),
            memo=plain,
        )
        click.echo(render_plan(the_plan), nl=False)
        if detailed_exitcode and the_plan.has_changes:
            return EXIT_CHANGES
        return EXIT_OK

    @cli.command()
    @common
    @click.option("--yes", "-y", "auto_approve", is_flag=True, help="Do not ask for confirmation.")
    @click.option(
        "--parallelism",
        type=click.IntRange(1, 256),
        default=10,
        show_default=True,
        help="How many independent resources to apply at once.",
    )
    @click.option(
        "--lock-timeout",
        type=float,
        default=0.0,
        show_default=True,
        help="Seconds to wait for the state lock.",
    )
    @click.option(
        "--target",
        "targets",
        multiple=True,
        metavar="ADDR",
        help="Apply only ADDR and what it depends on (repeatable).",
    )
    @click.option(
        "--replace",
        "replace",
        multiple=True,
        metavar="ADDR",
        help="Replace ADDR even if it has not changed (repeatable).",
    )
    @click.pass_context
    def apply(
        ctx: click.Context,
        auto_approve: bool,
        parallelism: int,
        lock_timeout: float,
        targets: tuple[str, ...],
        replace: tuple[str, ...],
    ) -> int:
        """Plan, ask, and apply: each resource is recorded in state as it completes."""
        from engine import operations
        from engine.cli import EXIT_ERROR, EXIT_OK, session_for
        from engine.plan import PlanOptions
        from engine.render_text import render_apply_summary

        session = session_for(ctx, lock_timeout=lock_timeout, parallelism=parallelism)

        def echo(line: str) -> None:
            click.echo(line.rstrip("\n"))

        report = operations.apply(
            session,
            options=PlanOptions(
                targets=list(targets), replace=list(replace), environment=session.workspace
            ),
            echo=echo,
            confirm=lambda _plan: auto_approve or _ask(),
            parallelism=parallelism,
        )
        if report is None:
            return EXIT_OK
        click.echo("")
        click.echo(render_apply_summary(report.summary(), report.ok))
        if not report.ok:
            for o in report.outcomes:
                if o.status in ("failed", "error"):
                    click.echo(f"Error: {o.address}: {o.message}", err=True)
            return EXIT_ERROR
        return EXIT_OK


def _ask() -> bool:
    click.echo("Do you want to perform these actions?")
    click.echo("  mlx will perform the actions described above.")
    click.echo("  Only 'yes' will be accepted to approve.")
    click.echo("")
    click.echo("  Enter a value: ", nl=False)
    answer = sys.stdin.readline().strip()
    click.echo("")
    return answer == "yes"
