"""``history``, ``show``, ``graph``, ``schema``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click


def register(cli: click.Group, common: Callable[..., Any]) -> None:
    @cli.command()
    @common
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    @click.pass_context
    def history(ctx: click.Context, as_json: bool) -> None:
        """List state versions: serial, time, actor, git SHA, operation, changes."""
        from cli.app import session_for
        from cli.render.inspect import render_history
        from readmodels.queries import history_rows

        rows = history_rows(session_for(ctx).reader())
        if as_json:
            click.echo(json.dumps(rows, indent=2, default=str))
        else:
            click.echo(render_history(rows), nl=False)

    @cli.command()
    @common
    @click.argument("address", required=False)
    @click.option("--serial", type=int, help="Show a state version (or ADDR as of that version).")
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    @click.pass_context
    def show(ctx: click.Context, address: str | None, serial: int | None, as_json: bool) -> None:
        """Show the state, one state version, one resource's value and lineage, or a saved
        plan (``mlx show plan.bin --json``: the JSON plan, as ``terraform show -json``)."""
        if address is not None and serial is None and Path(address).is_file():
            _show_plan(Path(address), as_json)
            return
        from cli.app import session_for
        from cli.render.inspect import render_show
        from readmodels.queries import show_data

        data = show_data(session_for(ctx).reader(), address, serial)
        if as_json:
            click.echo(json.dumps(data, indent=2, default=str, sort_keys=True))
        else:
            click.echo(render_show(data), nl=False)

    @cli.command()
    @common
    @click.argument("a", type=int)
    @click.argument("b", type=int)
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    @click.pass_context
    def diff(ctx: click.Context, a: int, b: int, as_json: bool) -> None:
        """Field-level differences of every resource between state versions A and B."""
        from cli.app import session_for
        from cli.render.inspect import render_diff
        from readmodels.queries import diff_data

        data = diff_data(session_for(ctx).reader(), a, b)
        if as_json:
            click.echo(json.dumps(data, indent=2, default=str, sort_keys=True))
        else:
            click.echo(render_diff(data), nl=False)

    @cli.command()
    @common
    @click.option(
        "--format", "fmt", type=click.Choice(["dot", "mermaid"]), default="dot", show_default=True
    )
    @click.pass_context
    def graph(ctx: click.Context, fmt: str) -> None:
        """Print the dependency graph of the spec."""
        from cli.app import session_for
        from engine.load.graph import to_dot, to_mermaid

        g = session_for(ctx).graph.graph
        click.echo(to_dot(g) if fmt == "dot" else to_mermaid(g), nl=False)

    @cli.command()
    def schema() -> None:
        """Print the JSON Schema of a spec file (for editors' YAML language servers)."""
        from specs.document import json_schema

        click.echo(json.dumps(json_schema(), indent=2))


def _show_plan(path: Path, as_json: bool) -> None:
    """A saved plan (``mlx plan -o FILE``) as made: its own time, the state it read."""
    from engine.workflows.release import load_plan

    plan = load_plan(path)
    if as_json:
        from engine.render.json_plan import render_json

        try:
            doc = render_json(plan)
        except ValueError:
            from common.diagnostics import MlxError

            raise MlxError(
                f"{path} was saved by an mlx without JSON plans' records: plan it again "
                "with `mlx plan -o FILE`"
            ) from None
        click.echo(json.dumps(doc, indent=2, sort_keys=True))
    else:
        from engine.render.text import render_plan

        click.echo(render_plan(plan), nl=False)
