"""``validate``, ``plan``, ``apply``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

TARGET_HELP = "Only ADDR and what it depends on (repeatable)."
REPLACE_HELP = "Replace ADDR even if it has not changed (repeatable)."
RERUN_HELP = "Run gates even where a passed verdict covers exactly these fingerprints."


def register(cli: click.Group, common: Callable[..., Any]) -> None:
    _register_validate(cli, common)
    _register_plan(cli, common)
    _register_apply(cli, common)
    _register_refresh(cli, common)


def _register_validate(cli: click.Group, common: Callable[..., Any]) -> None:
    @cli.command()
    @common
    @click.pass_context
    def validate(ctx: click.Context) -> None:
        """Load, validate, resolve and build the graph (no state touched)."""
        from cli.app import session_for
        from engine import operations

        result = operations.validate(session_for(ctx))
        click.echo(
            f"Success! The spec is valid: {result.resources} resources in {result.files} "
            f"file(s), {result.edges} dependencies."
        )


def _register_plan(cli: click.Group, common: Callable[..., Any]) -> None:
    @cli.command()
    @common
    @click.option(
        "--detailed-exitcode",
        is_flag=True,
        help="Exit 0 when there are no changes, 2 when there are, 1 on error.",
    )
    @click.option("--target", "targets", multiple=True, metavar="ADDR", help=TARGET_HELP)
    @click.option("--replace", "replace", multiple=True, metavar="ADDR", help=REPLACE_HELP)
    @click.option(
        "-o",
        "--out",
        "out",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Save the plan to FILE; `mlx apply FILE` applies exactly it.",
    )
    @click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print the plan as JSON (Terraform's JSON plan shape).",
    )
    @click.option("--markdown", is_flag=True, help="Print the plan as a pull-request comment.")
    @click.option(
        "--run-evals",
        is_flag=True,
        help="Run the gates the plan would run, and show their outcome.",
    )
    @click.option(
        "--refresh",
        "live_refresh",
        is_flag=True,
        help="Read every managed object first and plan the repair of any drift.",
    )
    @click.option("--rerun-gates", is_flag=True, help=RERUN_HELP)
    @click.option(
        "--strict-prices",
        is_flag=True,
        help="Fail (exit 1) when a served prompt or routing rule names a model neither the "
        "endpoint's pricing nor genai-prices can price (default: a warning).",
    )
    @click.pass_context
    def plan(
        ctx: click.Context,
        detailed_exitcode: bool,
        targets: tuple[str, ...],
        replace: tuple[str, ...],
        out: Path | None,
        as_json: bool,
        markdown: bool,
        run_evals: bool,
        live_refresh: bool,
        rerun_gates: bool,
        strict_prices: bool,
    ) -> int:
        """Show what apply would do."""
        import os

        from cli.app import EXIT_CHANGES, EXIT_OK, globals_of
        from engine.plan import memo as plancache

        if as_json and markdown:
            raise click.UsageError("choose one of --json and --markdown")
        g = globals_of(ctx)
        plain = not (
            targets or replace or out or as_json or markdown or run_evals or live_refresh
        ) and not (rerun_gates or strict_prices)
        if plain and not os.environ.get("MLX_NO_PLAN_MEMO"):
            workspace = g.environment or os.environ.get("MLX_ENV") or "default"
            remembered = plancache.lookup(g.chdir.resolve(), workspace, g.state_url, os.environ)
            if remembered is not None:
                if g.debug:
                    click.echo("debug: nothing the plan depends on changed (plan memo)", err=True)
                click.echo(remembered, nl=False)
                return EXIT_OK

        from cli.app import session_for

        session = session_for(ctx)
        session.start_loading()  # parse in worker processes while the planner imports

        from engine import operations
        from engine.plan.model import PlanOptions

        the_plan = operations.plan(
            session,
            PlanOptions(
                targets=list(targets),
                replace=list(replace),
                environment=session.workspace,
                run_evals=run_evals,
                rerun_gates=rerun_gates,
                strict_prices=strict_prices,
            ),
            memo=plain,
            with_spec=out is not None,
            with_values=as_json or out is not None,
            live_refresh=live_refresh,
            progress=lambda line: click.echo(line, err=True),
        )
        if as_json:
            import json

            from engine.render.json_plan import render_json

            click.echo(json.dumps(render_json(the_plan), indent=2, sort_keys=True))
        elif markdown:
            from engine.render.markdown import render_markdown

            click.echo(render_markdown(the_plan), nl=False)
        else:
            from engine.render.text import render_plan

            click.echo(render_plan(the_plan), nl=False)
        if out is not None:
            from engine.workflows.release import save_plan

            save_plan(the_plan, out)
            click.echo(
                f"Saved the plan to {out}: `mlx apply {out}` applies exactly it.",
                err=as_json or markdown,
            )
        if detailed_exitcode and the_plan.has_changes:
            return EXIT_CHANGES
        return EXIT_OK


def _register_apply(cli: click.Group, common: Callable[..., Any]) -> None:
    @cli.command()
    @common
    @click.argument("plan_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--yes", "-y", "auto_approve", is_flag=True, help="Do not ask for confirmation.")
    @click.option(
        "--parallelism",
        type=click.IntRange(1, 256),
        default=None,
        help="How many independent resources to apply at once (default: mlx.parallelism, or 10).",
    )
    @click.option(
        "--lock-timeout",
        type=float,
        default=0.0,
        show_default=True,
        help="Seconds to wait for the state lock.",
    )
    @click.option("--target", "targets", multiple=True, metavar="ADDR", help=TARGET_HELP)
    @click.option("--replace", "replace", multiple=True, metavar="ADDR", help=REPLACE_HELP)
    @click.option("--rerun-gates", is_flag=True, help=RERUN_HELP)
    @click.option(
        "--wait",
        is_flag=True,
        help="Drive the rollouts this apply started to completion or abort (exit 1 on abort).",
    )
    @click.pass_context
    def apply(
        ctx: click.Context,
        plan_file: Path | None,
        auto_approve: bool,
        parallelism: int | None,
        lock_timeout: float,
        targets: tuple[str, ...],
        replace: tuple[str, ...],
        rerun_gates: bool,
        wait: bool,
    ) -> int:
        """Plan, ask and apply — or apply a saved plan FILE exactly, without asking."""
        from cli.app import session_for

        session = session_for(ctx, lock_timeout=lock_timeout)
        session.start_loading()  # parse in worker processes while the rest imports

        from engine import operations
        from engine.plan.model import PlanOptions
        from engine.workflows.release import apply_saved

        delivery = delivery_for(auto_approve, parallelism)
        if plan_file is not None:
            if targets or replace or rerun_gates:
                raise click.UsageError(
                    "--target/--replace/--rerun-gates belong to the plan, not to apply FILE"
                )
            report = apply_saved(session, plan_file, delivery)
        else:
            options = PlanOptions(
                targets=list(targets),
                replace=list(replace),
                environment=session.workspace,
                rerun_gates=rerun_gates,
            )
            report = operations.apply(session, delivery, options)
        code = finish(report)
        if wait and code == 0:
            code = wait_for_rollouts(session)
        return code


def _register_refresh(cli: click.Group, common: Callable[..., Any]) -> None:
    @cli.command()
    @common
    @click.option(
        "--detailed-exitcode",
        is_flag=True,
        help="Exit 0 when nothing drifted, 2 when something did, 1 on error.",
    )
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    @click.option("--lock-timeout", type=float, default=0.0, show_default=True)
    @click.option(
        "--monitor",
        "monitors",
        multiple=True,
        metavar="NAME",
        help="Run this monitor now, due or not (repeatable); without it the due ones run.",
    )
    @click.pass_context
    def refresh(
        ctx: click.Context,
        detailed_exitcode: bool,
        as_json: bool,
        lock_timeout: float,
        monitors: tuple[str, ...],
    ) -> int:
        """Read every managed object and report what changed outside mlx; run the monitors
        that are due (`--detailed-exitcode`: 2 when something drifted or a monitor fires)."""
        import json

        from cli.app import EXIT_CHANGES, EXIT_OK, session_for
        from cli.render.monitors import render_monitor_runs
        from cli.unpriced_log import unpriced_since
        from engine import operations
        from engine.render.text import render_drift
        from state.status import DriftStatus

        session = session_for(ctx, lock_timeout=lock_timeout)
        result = operations.refresh(
            session,
            echo=lambda line: click.echo(line, err=as_json),
            warn=lambda line: click.echo(line, err=True),
            monitors=monitors,
            unpriced_since=unpriced_since,
        )
        found = result.drift
        items = [d.as_dict() for d in found]
        runs = [
            {"address": r.address, "state": r.state, "reason": r.reason, "notified": r.notified}
            for r in result.monitors
        ]
        if as_json:
            click.echo(json.dumps({"drift": items, "monitors": runs}, indent=2, sort_keys=True))
        elif items:
            click.echo("\n".join(render_drift(items, live=True)), nl=False)
            click.echo("Run `mlx plan` to see the repair.")
        else:
            click.echo("No drift: every managed object matches what mlx recorded.")
        if not as_json:
            for line in render_monitor_runs(result.monitors):
                click.echo(line)
        if result.undelivered:
            click.echo(
                f"Warning: {result.undelivered} alert(s) could not be delivered (see above); "
                "the drift is recorded in state.",
                err=True,
            )
        drifted = any(d.status != DriftStatus.UNREADABLE for d in found)
        firing = any(r.state == "firing" for r in result.monitors)
        return EXIT_CHANGES if detailed_exitcode and (drifted or firing) else EXIT_OK


def wait_for_rollouts(session: Any) -> int:
    """``apply --wait``: drive every rollout in progress until it completes or aborts."""
    from cli.app import EXIT_ERROR, EXIT_OK
    from controller.state import Phase
    from engine.workflows.rollouts import in_progress, run

    if not in_progress(session):
        return EXIT_OK
    click.echo("\nWaiting for rollouts in progress (Ctrl-C stops waiting; they stay in progress).")
    results = run(session, None, echo)
    code = EXIT_OK
    for r in results:  # each step was said as it was taken
        if r.phase == Phase.ABORTED:
            code = EXIT_ERROR
        elif not r.done:
            click.echo(
                f"{r.address} waits for a person ({r.waiting}): mlx rollout promote "
                f"{r.address.split('.', 1)[1]} (or abort)",
                err=True,
            )
            code = EXIT_ERROR
    return code


def delivery_for(auto_approve: bool, parallelism: int | None, out: Path | None = None) -> Any:
    """What the apply-like commands share: print, ask unless --yes, maybe save (-o)."""
    from engine.workflows.release import Delivery

    return Delivery(echo, lambda _plan: auto_approve or ask(), parallelism, out)


def echo(line: str) -> None:
    click.echo(line.rstrip("\n"))


def finish(report: Any) -> int:
    """Print an apply's summary; the exit code (1 when anything failed)."""
    from cli.app import EXIT_ERROR, EXIT_OK
    from engine.apply.outcomes import OutcomeStatus
    from engine.render.text import render_apply_summary

    if report is None:
        return EXIT_OK
    click.echo("")
    click.echo(render_apply_summary(report.summary(), report.ok))
    if not report.ok:
        for o in report.outcomes:
            if o.status in (OutcomeStatus.FAILED, OutcomeStatus.ERROR):
                click.echo(f"Error: {o.address}: {o.message}", err=True)
        return EXIT_ERROR
    return EXIT_OK


def ask() -> bool:
    click.echo("Do you want to perform these actions?")
    click.echo("  mlx will perform the actions described above.")
    click.echo("  Only 'yes' will be accepted to approve.")
    click.echo("")
    click.echo("  Enter a value: ", nl=False)
    answer = sys.stdin.readline().strip()
    click.echo("")
    return answer == "yes"
