"""``budgets``: spend limits over inference logs."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from specs.base import OwnedResource, SpecModel
from specs.kinds import Kind


class LabelSelector(SpecModel):
    labels: dict[str, str] = Field(..., min_length=1)


class Limit(SpecModel):
    usd: float | None = Field(None, gt=0)
    tokens: int | None = Field(None, gt=0)
    period: Literal["day", "week", "month"] = "month"

    @model_validator(mode="after")
    def _some_limit(self) -> Limit:
        if self.usd is None and self.tokens is None:
            raise ValueError("a limit needs `usd` or `tokens`")
        return self


class RouteAction(SpecModel):
    route: str = Field(..., description="${prompts.cheaper}")


class Budget(OwnedResource):
    section: ClassVar[str] = "budgets"
    computed: ClassVar[tuple[str, ...]] = ("spent_usd", "spent_tokens")

    target: str | LabelSelector
    limit: Limit
    alert_at: list[float] = Field(default_factory=lambda: [0.5, 0.8, 1.0])
    on_exceed: Literal["alert", "block"] | RouteAction = "alert"
    alert: str | None = None


KIND = Kind("budgets", Budget, default_provider="budget", order=80)
