"""``state list|show|rm|unlock``: inspection and surgery."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click


def register(cli: click.Group, common: Callable[..., Any]) -> None:
    @cli.group()
    def state() -> None:
        """Inspect and repair the state."""

    @state.command("list")
    @common
    @click.pass_context
    def list_(ctx: click.Context) -> None:
        """List the resources recorded in the state."""
        from cli.app import session_for
        from state.status import Status

        for address, row in sorted(session_for(ctx).reader().index().items()):
            flag = "" if row.status == Status.OK else f"  ({row.status})"
            click.echo(f"{address}{flag}")

    @state.command("show")
    @common
    @click.argument("address")
    @click.pass_context
    def show(ctx: click.Context, address: str) -> None:
        """Print one resource's record as JSON."""
        from dataclasses import asdict

        from cli.app import session_for
        from common.diagnostics import MlxError, did_you_mean

        reader = session_for(ctx).reader()
        rec = reader.records([address]).get(address)
        if rec is None:
            raise MlxError(f"{address} is not in the state{did_you_mean(address, reader.index())}")
        click.echo(json.dumps(asdict(rec), indent=2, default=str, sort_keys=True))

    @state.command("rm")
    @common
    @click.argument("addresses", nargs=-1, required=True)
    @click.option("--lock-timeout", type=float, default=0.0)
    @click.pass_context
    def rm(ctx: click.Context, addresses: tuple[str, ...], lock_timeout: float) -> None:
        """Forget resources: mlx stops managing them; the objects themselves stay."""
        from cli.app import session_for
        from common.diagnostics import MlxError, did_you_mean

        session = session_for(ctx, lock_timeout=lock_timeout)
        with session.writer("state-rm") as writer:
            index = writer.index()
            missing = [a for a in addresses if a not in index]
            if missing:
                raise MlxError(
                    f"not in the state: {', '.join(missing)}{did_you_mean(missing[0], index)}"
                )
            writer.begin("state-rm", actor=session.actor, git_sha=session.git_sha)
            for address in addresses:
                writer.remove(address, action="forget")
            writer.finish("complete", {"forgotten": len(addresses)})
        for address in addresses:
            click.echo(f"Removed {address} from the state (the object itself was not touched).")

    @state.command("unlock")
    @common
    @click.argument("lock_id")
    @click.pass_context
    def unlock(ctx: click.Context, lock_id: str) -> None:
        """Remove a lock left by a process that is gone (see the lock error for its ID)."""
        from cli.app import session_for
        from common.diagnostics import MlxError

        session = session_for(ctx)
        try:
            info = session.store.force_unlock(session.workspace, lock_id)
        except LookupError as exc:
            raise MlxError(str(exc)) from exc
        click.echo(f"Unlocked. The lock was {info.describe()}.")
