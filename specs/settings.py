"""``mlx``, ``variables`` and ``environments``: settings, inputs and their overrides."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from specs.base import SpecModel


class Settings(SpecModel):
    state: str | None = Field(
        None, description="State URL: sqlite:///.mlx/state.db (default) or postgresql://…"
    )
    parallelism: int | None = Field(None, ge=1, le=256)
    drift_alerts: list[Annotated[str, StringConstraints(pattern=r"^alerts\.[a-z][a-z0-9_-]*$")]] = (
        Field(default_factory=list, description="Alert channels `mlx refresh` tells about drift.")
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
