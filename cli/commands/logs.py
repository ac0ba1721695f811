"""``logs``: read an endpoint's inference log (``mlx logs ENDPOINT [--since D] [--follow]``),
summarise it (``--summary``) or price its LLM answers again (``--reprice``).

SQLAlchemy and the log's store are imported only when the command runs.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import click

#: ``--log URL`` of every command that reads or writes the inference log
LOG_OPTION = click.option(
    "--log",
    "log_option",
    metavar="URL",
    help="Inference log URL (overrides MLX_LOG and mlx.log).",
)


def register(cli: click.Group, common: Callable[..., Any]) -> None:
    @cli.command()
    @common
    @click.argument("endpoint")
    @click.option(
        "--since",
        metavar="D",
        help="Only records since D: a duration back from now (30s, 10m, 2h, 1d) or an "
        "ISO-8601 time (UTC unless it has an offset).",
    )
    @click.option("-f", "--follow", is_flag=True, help="Keep printing new records until Ctrl-C.")
    @click.option("--json", "as_json", is_flag=True, help="JSON lines with the record's fields.")
    @click.option(
        "-n",
        "--limit",
        type=click.IntRange(min=0),
        default=100,
        show_default=True,
        help="Print at most the last N records (0: all); --follow then prints every new one.",
    )
    @LOG_OPTION
    @click.option(
        "--summary",
        is_flag=True,
        help="One line per variant instead: requests, error rate, requests the callers "
        "abandoned (499), latency p50/p95/p99, cache hit rate, cost per request and per "
        "successful outcome (each request's newest feedback).",
    )
    @click.option(
        "--reprice",
        is_flag=True,
        help="Recompute cost_usd of the logged LLM answers (in the window) from their stored "
        "usage with the current prices: the spec's pricing, then genai-prices. Records "
        "without usage are left alone.",
    )
    @click.option(
        "--interval",
        type=click.FloatRange(min=0.05),
        default=1.0,
        show_default=True,
        help="Seconds between polls with --follow.",
    )
    @click.pass_context
    def logs(
        ctx: click.Context,
        endpoint: str,
        since: str | None,
        follow: bool,
        as_json: bool,
        limit: int,
        log_option: str | None,
        summary: bool,
        reprice: bool,
        interval: float,
    ) -> None:
        """Print the inference log of ENDPOINT: one line per request, oldest first."""
        from cli.app import session_for
        from common.diagnostics import MlxError

        if summary and follow:
            raise MlxError("--summary and --follow do not go together")
        if reprice and (summary or follow):
            raise MlxError("--reprice goes with neither --summary nor --follow")
        session = session_for(ctx)
        try:
            if reprice:
                _reprice(session, endpoint, since, as_json, log_option)
                return
            if summary:
                _summary(session, endpoint, since, as_json, log_option)
                return
            _logs(session, endpoint, since, follow, as_json, limit, log_option, interval)
        except BrokenPipeError:  # `mlx logs x | head`
            _quiet_stdout()


def _opened(
    session: Any, endpoint: str, since_text: str | None, log_option: str | None, *, create: bool
) -> tuple[Any, float | None]:
    """The log's store (None: nothing served yet) and the ``--since`` time; an endpoint
    neither the log nor the spec knows is an error naming the ones there are."""
    from common.diagnostics import MlxError
    from engine.log_location import log_url
    from inference.times import parse_since

    try:
        since = parse_since(since_text) if since_text is not None else None
    except ValueError as exc:
        raise MlxError(str(exc)) from None
    url = log_url(session, log_option)
    environment = session.workspace
    declared = _declared_endpoints(session)
    store = _open(url, create=create and endpoint in declared)
    from inference import query

    logged = query.endpoints(store, environment=environment) if store is not None else []
    if endpoint not in logged and endpoint not in declared:
        raise MlxError(_unknown(endpoint, url, environment, logged, store))
    return store, since


def _summary(
    session: Any, endpoint: str, since_text: str | None, as_json: bool, log_option: str | None
) -> None:
    """Per variant over the window (all time without ``--since``), from the log's index."""
    from inference import query

    store, since = _opened(session, endpoint, since_text, log_option, create=False)
    found = (
        query.variant_summary(store, endpoint, since=since, environment=session.workspace)
        if store is not None
        else {}
    )
    if as_json:
        rows = {name: v.to_json() for name, v in sorted(found.items())}
        click.echo(json.dumps({"endpoint": endpoint, "variants": rows}, indent=2, sort_keys=True))
        return
    if not found:
        click.echo(f"{endpoint}: no requests logged" + (" in the window" if since else ""))
        return
    from engine.render.table import table

    header = ["VARIANT", "REQUESTS", "ERRORS", "ABANDONED", "P50", "P95", "P99", "CACHE HITS",
              "$/REQUEST", "$/SUCCESS"]  # fmt: skip
    click.echo(table(header, [_summary_row(v) for _, v in sorted(found.items())]), nl=False)


def _reprice(
    session: Any, endpoint: str, since_text: str | None, as_json: bool, log_option: str | None
) -> None:
    """Price the window's LLM answers again with the spec's current prices."""
    from common import pricing
    from inference.reprice import Usage, reprice

    store, since = _opened(session, endpoint, since_text, log_option, create=False)
    overrides = _spec_pricing(session, endpoint)

    def price_of(u: Usage) -> pricing.Priced:
        used = pricing.Usage(u.input_tokens, u.output_tokens, u.cached_input_tokens)
        return pricing.price(overrides, u.requested_model, u.model, used, u.ts)

    if store is None:
        done = None
    else:
        done = reprice(store, endpoint, price_of, environment=session.workspace, since=since)
    if as_json:
        out = {"endpoint": endpoint, **(done.to_json() if done is not None else {})}
        click.echo(json.dumps(out, indent=2, sort_keys=True))
        return
    if done is None or done.records == 0:
        click.echo(
            f"{endpoint}: no records with usage to reprice" + (" in the window" if since else "")
        )
        return
    unpriced = (
        f"; unpriced {done.unpriced_before} -> {done.unpriced_after}"
        if done.unpriced_before or done.unpriced_after
        else ""
    )
    click.echo(
        f"{endpoint}: {done.changed} of {done.records} records changed; total "
        f"${done.before_usd:.6f} -> ${done.after_usd:.6f}{unpriced}"
    )


def _spec_pricing(session: Any, endpoint: str) -> dict[str, Any]:
    """The endpoint's ``pricing`` as the spec says now (checked as the gateway reads it); an
    endpoint the spec does not declare is priced from genai-prices alone (said on stderr)."""
    from pydantic import ValidationError

    from common.diagnostics import MlxError
    from dataplane.route import Price

    try:
        decls = session.spec.decls.values()
    except MlxError:
        decls = []
    decl = next((d for d in decls if d.section == "endpoints" and d.name == endpoint), None)
    if decl is None:
        click.echo(
            f"note: endpoint {endpoint!r} is not in the spec: prices come from genai-prices alone",
            err=True,
        )
        return {}
    out = {}
    for model, given in (decl.body.get("pricing") or {}).items():
        try:
            out[str(model)] = Price.model_validate(given)
        except ValidationError as exc:
            raise MlxError(f"{decl.file}: endpoints.{endpoint}.pricing.{model}: {exc}") from None
    return out


def _summary_row(v: Any) -> list[str]:
    def ms(x: float | None) -> str:
        return "-" if x is None else f"{x:.1f}ms"

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f}%"

    def usd(x: float | None) -> str:
        return "-" if x is None else f"${x:.6f}"

    return [
        v.variant,
        str(v.requests),
        pct(v.error_rate),
        str(v.abandoned),  # status 499: the callers gave up; not among REQUESTS
        ms(v.latency_p50_ms),
        ms(v.latency_p95_ms),
        ms(v.latency_p99_ms),
        pct(v.hit_rate),
        usd(v.cost_per_request),
        usd(v.cost_per_success),
    ]


def _logs(
    session: Any,
    endpoint: str,
    since_text: str | None,
    follow: bool,
    as_json: bool,
    limit: int,
    log_option: str | None,
    interval: float,
) -> None:
    from inference import query

    store, since = _opened(session, endpoint, since_text, log_option, create=follow)
    environment = session.workspace
    if store is None:  # declared, nothing served yet, not following
        return
    render = _json_line if as_json else _text_line
    follower = query.Follower(store, endpoint, environment=environment)
    page = follower.first(since=since, limit=None if limit == 0 else limit + 1)
    if limit and len(page) > limit:
        page = page[-limit:]
        click.echo(f"(the last {limit} records; --limit 0 prints all, --since narrows)", err=True)
    _emit(render, page)
    if not follow:
        return
    try:
        while True:
            time.sleep(interval)
            _emit(render, follower.poll())
    except KeyboardInterrupt:
        return  # Ctrl-C ends --follow: exit 0


def _open(url: str, *, create: bool) -> Any:
    """The store, or None for a SQLite file that does not exist (never created by reading)."""
    from common.diagnostics import MlxError
    from inference.store import LogError, open_log

    if url.startswith("sqlite:///") and not create:
        path = Path(url[len("sqlite:///") :])
        if url != "sqlite:///:memory:" and not path.exists():
            return None
    try:
        return open_log(url)
    except LogError as exc:
        raise MlxError(str(exc)) from None


def _declared_endpoints(session: Any) -> set[str]:
    """Endpoints the spec declares (known even before they have served anything)."""
    from common.diagnostics import MlxError

    try:
        decls = session.spec.decls.values()
    except MlxError:
        return set()
    return {d.name for d in decls if d.section == "endpoints"}


def _unknown(endpoint: str, url: str, environment: str, logged: list[str], store: Any) -> str:
    from common.db import redact_url
    from common.diagnostics import did_you_mean

    where = f"the inference log at {redact_url(url)}"
    if store is None:
        return f'unknown endpoint "{endpoint}": {where} does not exist yet (nothing served)'
    if logged:
        names = ", ".join(logged)
        return (
            f'unknown endpoint "{endpoint}"{did_you_mean(endpoint, logged)}: {where} has '
            f"records of {names} (environment {environment})"
        )
    from inference import query

    others = [
        env
        for env in query.environments(store)
        if env != environment and endpoint in query.endpoints(store, environment=env)
    ]
    if others:
        return (
            f'unknown endpoint "{endpoint}" in environment {environment}: {where} has it in '
            f"{', '.join(others)} (use --env)"
        )
    return f'unknown endpoint "{endpoint}": {where} has no records for environment {environment}'


def _emit(render: Callable[[Any], str], rows: Iterable[Any]) -> None:
    lines = [render(r) for r in rows]
    if lines:
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()


def _json_line(logged: Any) -> str:
    return json.dumps(logged.record.to_json(), default=str)


def _text_line(logged: Any) -> str:
    """time, request id, variant, version, status, latency (and time to first token when the
    answer was streamed), tokens, cost, error."""
    from inference.records import iso

    r = logged.record
    tokens = (
        "-"
        if r.input_tokens is None and r.output_tokens is None
        else f"{r.input_tokens or 0}+{r.output_tokens or 0}tok"
    )
    cost = "-" if r.cost_usd is None else f"${r.cost_usd:.6f}"
    if r.cost_usd is None and r.model is not None and r.status == 200:
        cost = "unpriced"  # an LLM answer no price was found for: never shown as $0
    parts = [
        iso(r.ts)[:23] + "Z",
        r.request_id,
        r.variant,
        f"v{r.version}" if r.version is not None else "v-",
        str(r.status),
        f"{r.latency_ms:.1f}ms",
        tokens,
        cost,
    ]
    if r.ttft_ms is not None:
        parts.insert(6, f"ttft {r.ttft_ms:.1f}ms")
    if r.cache_hit:
        parts.append("cache-hit")
    if r.client_request_id:
        parts.append(f"(caller's id {r.client_request_id}, already used)")
    if r.error:
        parts.append(" ".join(str(r.error).split()))
    return "  ".join(parts)


def _quiet_stdout() -> None:
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
