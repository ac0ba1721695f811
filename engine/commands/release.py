"""``rollback`` and ``promote``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from engine.commands.core import ask, echo, finish


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
    @click.option("--yes", "-y", "auto_approve", is_flag=True, help="Do not ask for confirmation.")
    @click.option(
        "-o",
        "--out",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Save the rollback plan instead of applying it.",
    )
    @click.option("--parallelism", type=click.IntRange(1, 256), default=10, show_default=True)
    @click.option("--lock-timeout", type=float, default=0.0, show_default=True)
    @click.pass_context
    def rollback(
        ctx: click.Context,
        to: int | None,
        auto_approve: bool,
        out: Path | None,
        parallelism: int,
        lock_timeout: float,
    ) -> int:
        """Return to the spec and the exact versions of an earlier state version."""
        from engine.cli import session_for
        from engine.release import rollback as run

        session = session_for(ctx, lock_timeout=lock_timeout)
        report = run(
            session,
            to=to,
            echo=echo,
            parallelism=parallelism,
            out_file=out,
            confirm=lambda _plan: auto_approve or ask(),
        )
        return finish(report)

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
    @click.option("--yes", "-y", "auto_approve", is_flag=True, help="Do not ask for confirmation.")
    @click.option(
        "-o",
        "--out",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Save the plan instead of applying it (protected environments).",
    )
    @click.option("--parallelism", type=click.IntRange(1, 256), default=10, show_default=True)
    @click.option("--lock-timeout", type=float, default=0.0, show_default=True)
    @click.pass_context
    def promote(
        ctx: click.Context,
        source: str,
        target: str,
        auto_approve: bool,
        out: Path | None,
        parallelism: int,
        lock_timeout: float,
    ) -> int:
        """Plan ENV --to with exactly the versions and fingerprints ENV --from has applied."""
        from dataclasses import replace

        from engine.cli import globals_of, session_for
        from engine.release import promote as run

        root = ctx.find_root()
        root.obj = replace(globals_of(ctx), environment=target)
        session = session_for(ctx, lock_timeout=lock_timeout)
        session.inputs  # noqa: B018 - fail early on an unknown environment name
        report = run(
            session,
            source=source,
            echo=echo,
            parallelism=parallelism,
            out_file=out,
            confirm=lambda _plan: auto_approve or ask(),
        )
        return finish(report)
