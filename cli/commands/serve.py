"""``serve``: run the embedded gateway (``mlx serve [--host H] [--port P]``).

Only click is imported here: the gateway stack (starlette, uvicorn, httpx, prometheus-client)
is imported when the command runs, so ``mlx --help`` never loads it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from cli.commands.logs import LOG_OPTION

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def register(cli: click.Group, common: Callable[..., Any]) -> None:
    @cli.command()
    @common
    @click.option(
        "--host",
        default=DEFAULT_HOST,
        show_default=True,
        help="Address to bind. Anything but loopback needs a bearer token "
        "(MLX_GATEWAY_TOKEN or mlx.gateway.token).",
    )
    @click.option(
        "--port",
        type=click.IntRange(0, 65535),
        default=DEFAULT_PORT,
        show_default=True,
        help="Port to bind (0: a free one, printed when ready).",
    )
    @LOG_OPTION
    @click.option(
        "--poll",
        type=click.FloatRange(min=0.05),
        default=1.0,
        show_default=True,
        help="Seconds between reads of the route table.",
    )
    @click.option(
        "--workers",
        type=click.IntRange(1, 64),
        default=4,
        show_default=True,
        help="Threads that run model predictions.",
    )
    @click.option(
        "--max-batch",
        type=click.IntRange(1, 1024),
        default=32,
        show_default=True,
        help="Most requests to one scikit-learn model answered by one predict call, from "
        "those already waiting (nothing waits to fill a batch); 1 turns batching off.",
    )
    @click.option(
        "--log-durability",
        type=click.Choice(["batched", "sync"]),
        default="batched",
        show_default=True,
        help="batched: answer first, write records every 0.2 s (a crash or kill -9 loses the "
        "records of the last 0.2 s of answers); sync: an answer waits until its record is "
        "written (a killed process loses none; slower).",
    )
    @click.option(
        "--header-timeout",
        type=click.FloatRange(min=0.1),
        default=10.0,
        show_default=True,
        help="Seconds a connection has to send a request's headers (else 408, closed).",
    )
    @click.option(
        "--body-timeout",
        type=click.FloatRange(min=0.1),
        default=30.0,
        show_default=True,
        help="Seconds a caller has to send a request's body (else 408, logged as the "
        "caller's: status 499).",
    )
    @click.option(
        "--keep-alive",
        type=click.FloatRange(min=1),
        default=5.0,
        show_default=True,
        help="Seconds an idle kept-alive connection stays open.",
    )
    @click.option(
        "--max-connections",
        type=click.IntRange(min=1),
        default=1000,
        show_default=True,
        help="Open connections at most; requests beyond get 503.",
    )
    @click.option(
        "--default-endpoint",
        metavar="NAME",
        default=None,
        help="The model endpoint POST /invocations answers for (MLflow's and SageMaker's "
        "root route); default: the only model endpoint, when exactly one is served.",
    )
    @click.pass_context
    def serve(ctx: click.Context, **options: Any) -> int:
        """Run the gateway for every applied endpoint, until SIGTERM or Ctrl-C.

        \b
        POST /endpoints/NAME/invocations          models (MLflow scoring JSON)
        POST /endpoints/NAME/v1/chat/completions  prompts (OpenAI chat completions)
        POST /endpoints/NAME/feedback             labels and outcomes
        GET  /healthz, /readyz, /metrics
        POST /invocations; GET /ping, /health, /version   (MLflow's scoring server)
        """
        from cli.app import session_for

        return _serve(session_for(ctx), **options)


def _serve(
    session: Any,
    host: str,
    port: int,
    log_option: str | None,
    poll: float,
    workers: int,
    max_batch: int,
    log_durability: str,
    header_timeout: float,
    body_timeout: float,
    keep_alive: float,
    max_connections: int,
    default_endpoint: str | None = None,
) -> int:
    from common.diagnostics import MlxError

    try:
        import gateway.server as server
    except ImportError as exc:
        raise MlxError(
            f"mlx serve needs the serve extra: pip install 'mlxctl[serve]' ({exc})"
        ) from None
    from cli.spec_keys import SpecDirectoryKeys
    from engine.log_location import log_url
    from gateway.auth import AuthConfigError, configured_token, is_loopback
    from gateway.durable import Durability

    setting = _token_setting(session)
    try:
        token = configured_token(session.options.environ, setting)
    except AuthConfigError as exc:
        raise MlxError(str(exc)) from None
    if not token and not is_loopback(host):
        raise MlxError(
            f"--host {host} is not a loopback address: set a bearer token first "
            "(MLX_GATEWAY_TOKEN, or mlx.gateway.token: ${env.NAME} in the spec)"
        )
    opts = server.ServeOptions(
        host=host,
        port=port,
        root=session.root,
        state_url=session.state_url(),
        log_url=log_url(session, log_option),
        workspace=session.workspace,
        environment=session.environment,
        token=token or None,
        poll_s=poll,
        predict_workers=workers,
        max_batch=max_batch,
        limits=server.Limits(
            header_timeout_s=header_timeout,
            body_timeout_s=body_timeout,
            keep_alive_s=keep_alive,
            max_connections=max_connections,
        ),
        durability=Durability(log_durability),
        default_endpoint=default_endpoint,
    )
    try:
        return server.serve(opts, SpecDirectoryKeys(opts.root, opts.environment))
    except server.ServeError as exc:
        raise MlxError(str(exc)) from None


def _token_setting(session: Any) -> Any:
    """``mlx.gateway.token`` from the spec. A spec that does not load stops ``mlx serve`` (an
    MlxError): it might hold the token, and serving without it would drop the auth."""
    gateway = session.spec.settings.get("gateway") or {}
    return gateway.get("token") if isinstance(gateway, dict) else None
