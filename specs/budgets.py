"""``budgets``: spend limits over inference logs.

Not built yet (no ``budget`` provider ships with this version of mlx): ``mlx
validate`` refuses a budget and ``mlx plan`` leaves it out, saying so — nothing
enforces it (``engine.load.availability``). Its fields are checked now, so a budget
written today works unchanged once the kind exists.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Discriminator, Field, Strict, Tag, field_validator, model_validator

from specs.base import OwnedResource, SpecModel, ref_field
from specs.kinds import Kind

#: ``alert_at`` is a share of the limit; above 1 it warns of a forecast overrun.
ALERT_AT_MAX = 2.0
_PROMPT_REF = re.compile(r"^\$\{\s*prompts\.[a-z][a-z0-9_-]{0,62}\s*\}$")


class LabelSelector(SpecModel):
    labels: dict[str, str] = Field(..., min_length=1)


class Limit(SpecModel):
    usd: Annotated[float, Strict()] | None = Field(None, gt=0, allow_inf_nan=False)
    tokens: Annotated[int, Strict()] | None = Field(None, gt=0)
    period: Literal["day", "week", "month"] = "month"

    @model_validator(mode="after")
    def _some_limit(self) -> Limit:
        if self.usd is None and self.tokens is None:
            raise ValueError("a limit needs `usd` or `tokens`")
        return self


class RouteAction(SpecModel):
    route: str = Field(..., description="A cheaper prompt that passed its own gates: ${prompts.x}")

    @field_validator("route")
    @classmethod
    def _a_prompt(cls, value: str) -> str:
        if not _PROMPT_REF.match(value):
            raise ValueError('`route` must be one reference like "${prompts.NAME}"')
        return value


def _on_exceed_kind(value: Any) -> str:
    return "route" if isinstance(value, dict | RouteAction) else "action"


#: ``alert``, ``block`` or ``{route: ${prompts.x}}``: one error for a wrong value, not one
#: per member of the union.
OnExceed = Annotated[
    Annotated[Literal["alert", "block"], Tag("action")] | Annotated[RouteAction, Tag("route")],
    Discriminator(_on_exceed_kind),
]

AlertAt = Annotated[float, Strict(), Field(allow_inf_nan=False)]


class Budget(OwnedResource):
    section: ClassVar[str] = "budgets"
    computed: ClassVar[tuple[str, ...]] = ("spent_usd", "spent_tokens")

    target: str | LabelSelector = ref_field(
        ...,
        kinds=("prompts", "models", "endpoints", "rollouts"),
        description="What spends: a prompt, model, endpoint or rollout, or {labels: {…}}.",
    )
    limit: Limit
    alert_at: list[AlertAt] = Field(
        default_factory=lambda: [0.5, 0.8, 1.0],
        description="Shares of the limit that alert (0.8 = 80 %), each in (0, 2].",
    )
    on_exceed: OnExceed = Field(
        "alert", description="alert | block | {route: ${prompts.cheaper}} past the limit."
    )
    alert: str | None = ref_field(None, kinds=("alerts",))
    for_: Annotated[int, Strict()] | None = Field(
        None, alias="for", ge=1, description="Consecutive runs past a threshold before alerting."
    )

    @field_validator("alert_at")
    @classmethod
    def _shares(cls, value: list[float]) -> list[float]:
        wrong = [share for share in value if not 0 < share <= ALERT_AT_MAX]
        if wrong:
            raise ValueError(
                f"`alert_at` holds shares of the limit (0.8 = 80 %), each in (0, "
                f"{ALERT_AT_MAX:g}]; not {', '.join(f'{w:g}' for w in wrong)}"
            )
        if len(set(value)) != len(value):
            raise ValueError(f"`alert_at` lists a share twice: {value}")
        return value


KIND = Kind("budgets", Budget, default_provider="budget", order=80)
