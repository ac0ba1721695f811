"""``rollback`` and ``promote``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cli.commands.core import RERUN_HELP, delivery_for, finish


def delivery_options(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--yes, -o FILE, --parallelism, --lock-timeout: shared by rollback and promote."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        for opt in reversed(
            [
                click.option(
                    "--yes", "-y", "auto_approve", is_flag=True, help="Do not ask for confirmation."
                ),
                click.option(
                    "-o",
                    "--out",
                    type=click.Path(dir_okay=False, path_type=Path),
                    help=f"Save the {what} plan instead of applying it.",
                ),
                click.option(
                    "--parallelism",
                    type=click.IntRange(1, 256),
                    default=None,
                    help="Default: mlx.parallelism, or 10.",
                ),
                click.option("--lock-timeout", type=float, default=0.0, show_default=True),
                click.option("--rerun-gates", is_flag=True, help=RERUN_HELP),
            ]
        ):
            f = opt(f)
        return f

    return decorate


def register(cli: click.Group, common: Callable[..., Any]) -> None:
    @cli.command()
    @common
    @click.option(
        "--to",
        "to",
        type=int,
        metavar="SERIAL",
        help="State version to return to (default: the one before the current).",
    )
    @delivery_options("rollback")
    @click.pass_context
    def rollback(
        ctx: click.Context,
        to: int | None,
        auto_approve: bool,
        out: Path | None,
        parallelism: int | None,
        lock_timeout: float,
        rerun_gates: bool,
    ) -> int:
        """Return to the spec and the exact versions of an earlier state version.

        Gates whose passed verdict covers exactly the restored versions are not run
        again (the plan shows the verdict it reuses); --rerun-gates runs them.
        """
        from cli.app import session_for
        from engine.workflows.release import rollback as run

        session = session_for(ctx, lock_timeout=lock_timeout)
        delivery = delivery_for(auto_approve, parallelism, out)
        return finish(run(session, to, delivery, rerun_gates=rerun_gates))

    @cli.command()
    @common
    @click.option(
        "--from",
        "source",
        required=True,
        metavar="ENV",
        help="Environment whose applied versions to promote.",
    )
    @click.option("--to", "target", required=True, metavar="ENV", help="Environment to update.")
    @delivery_options("promotion")
    @click.pass_context
    def promote(
        ctx: click.Context,
        source: str,
        target: str,
        auto_approve: bool,
        out: Path | None,
        parallelism: int | None,
        lock_timeout: float,
        rerun_gates: bool,
    ) -> int:
        """Plan ENV --to with exactly the versions and fingerprints ENV --from has applied."""
        from dataclasses import replace

        from cli.app import globals_of, session_for
        from engine.workflows.release import promote as run

        root = ctx.find_root()
        root.obj = replace(globals_of(ctx), environment=target)
        session = session_for(ctx, lock_timeout=lock_timeout)
        session.inputs  # noqa: B018 - fail early on an unknown environment name
        delivery = delivery_for(auto_approve, parallelism, out)
        return finish(run(session, source, delivery, rerun_gates=rerun_gates))
