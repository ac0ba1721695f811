"""``mlx``, ``variables`` and ``environments``: settings, inputs and their overrides."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from specs.base import SpecModel


class GatewaySettings(SpecModel):
    """``mlx.gateway``: settings of the embedded gateway (``mlx serve``)."""

    token: (
        Annotated[str, StringConstraints(pattern=r"^\$\{env\.[A-Za-z_][A-Za-z0-9_]*\}$")] | None
    ) = Field(
        None,
        description="Bearer token callers must send (required to bind a non-loopback "
        "address); a secret: ${env.NAME}. MLX_GATEWAY_TOKEN overrides it.",
    )


class Settings(SpecModel):
    state: str | None = Field(
        None, description="State URL: sqlite:///.mlx/state.db (default) or postgresql://…"
    )
    log: str | None = Field(
        None,
        description="Inference log URL: sqlite:///.mlx/inference.db (default) or postgresql://… "
        "(default: the state's database when the state is PostgreSQL)",
    )
    parallelism: int | None = Field(None, ge=1, le=256)
    gateway: GatewaySettings | None = None
    drift_alerts: list[Annotated[str, StringConstraints(pattern=r"^alerts\.[a-z][a-z0-9_-]*$")]] = (
        Field(default_factory=list, description="Alert channels `mlx refresh` tells about drift.")
    )
    cost_alerts: list[Annotated[str, StringConstraints(pattern=r"^alerts\.[a-z][a-z0-9_-]*$")]] = (
        Field(
            default_factory=list,
            description="Alert channels `mlx refresh` tells about LLM answers it could not "
            "price (cost_usd null).",
        )
    )
    paths: list[Annotated[str, StringConstraints(min_length=1)]] = Field(
        default_factory=list,
        description="Directories outside the spec directory whose files the spec may name "
        "(artifacts, datasets, templates, cases), relative to the spec directory or absolute. "
        "Every other local path must resolve inside the spec directory.",
    )


class Variable(SpecModel):
    default: Any = None
    description: str | None = None
    sensitive: bool = False


class Environment(SpecModel):
    variables: dict[str, Any] = Field(default_factory=dict)
    protected: bool = False
    state: str | None = Field(None, description="State URL for this environment.")
    description: str | None = None
