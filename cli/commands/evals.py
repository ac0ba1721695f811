"""``eval``: run one gate now, applying nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click


def register(cli: click.Group, common: Callable[..., Any]) -> None:
    @cli.command("eval")
    @common
    @click.argument("name")
    @click.option("--json", "as_json", is_flag=True, help="Print the outcome and evidence as JSON.")
    @click.pass_context
    def eval_(ctx: click.Context, name: str, as_json: bool) -> int:
        """Run the gate NAME (evals.NAME) against the current spec; exit 1 if it fails."""
        import json

        from cli.app import EXIT_ERROR, EXIT_OK, session_for
        from engine import operations

        result = operations.evaluate(
            session_for(ctx), name, progress=lambda line: click.echo(line, err=True)
        )
        if as_json:
            click.echo(
                json.dumps(
                    {"passed": not result.failed, "message": result.message, **result.outputs},
                    indent=2,
                    sort_keys=True,
                    default=str,
                )
            )
        else:
            report = result.outputs.get("report")
            if report:
                click.echo(str(report).rstrip())
            verdict = "FAILED" if result.failed else "passed"
            click.echo(f"\nGate {verdict}" + (f": {result.message}" if result.message else "."))
        return EXIT_ERROR if result.failed else EXIT_OK
