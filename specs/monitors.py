"""``monitors``: drift, performance, latency, error-rate, cost and eval watches.

The built-in ``monitor`` provider runs the types it lists (``providers.monitor``); ``mlx
validate`` refuses a monitor of any other type and ``mlx plan`` leaves it out, saying so
(``engine.load.availability``). Its fields are checked now, so a monitor written today works
unchanged once the type exists.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field, Strict, model_validator

from specs import cron
from specs.base import Duration, OwnedResource, ref_field
from specs.evals import Slices
from specs.kinds import Kind

MonitorType = Literal[
    "data_drift", "prediction_drift", "performance", "latency", "error_rate", "cost", "eval"
]
DRIFT = frozenset({"data_drift", "prediction_drift"})
#: Types that read an endpoint's inference log: they need a live ``target``.
LIVE_ONLY = frozenset({"latency", "error_rate", "cost", "performance"})

Schedule = Annotated[str, AfterValidator(cron.check)]

#: The figures a metric monitor judges (``metric``; the default first) and which way its
#: ``threshold`` points: a ceiling (breach above) or a floor (breach below). docs/monitors.md.
METRIC_CHOICES: dict[str, tuple[str, ...]] = {
    "latency": ("p95", "p50", "p99", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms"),
    "error_rate": ("error_rate",),
    "cost": ("cost_per_request", "cost_per_success"),
    "performance": ("accuracy", "success_rate", "mean_score"),
}
FLOOR_TYPES = frozenset({"performance"})
#: Metrics that are shares: a threshold above 1 could never be crossed (or always would be).
SHARES = frozenset({"error_rate", "accuracy", "success_rate"})


class Monitor(OwnedResource):
    section: ClassVar[str] = "monitors"
    computed: ClassVar[tuple[str, ...]] = ("last_value", "status")

    target: str | None = ref_field(
        None,
        kinds=("rollouts", "endpoints"),
        description="A rollout or endpoint: the monitor reads its inference log.",
    )
    current: str | None = ref_field(
        None, kinds=("datasets",), description="Batch: the dataset compared with `reference`."
    )
    type: MonitorType
    reference: str | None = ref_field(None, kinds=("datasets",))
    features: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description="Columns compared: data_drift default every reference column; "
        "prediction_drift the prediction column(s), default [prediction].",
    )
    method: Literal["auto", "psi", "ks", "wasserstein", "chisquare", "jensenshannon"] | None = (
        Field(None, description="Drift test; default auto (as Evidently picks).")
    )
    metric: str | None = Field(None, min_length=1, description="performance: the metric watched.")
    threshold: Annotated[float, Strict()] | None = Field(None, ge=0, allow_inf_nan=False)
    window: Duration | None = None
    schedule: Schedule | None = Field(None, description='Cron, UTC: "0 * * * *".')
    alert: str | None = ref_field(None, kinds=("alerts",))
    gate: str | None = ref_field(
        None, kinds=("evals",), description="type: eval — the gate re-run on the released version."
    )
    slices: Slices | None = None
    min_labels: Annotated[int, Strict()] | None = Field(
        None, ge=1, description="performance: fewer labels is insufficient_data."
    )
    for_: Annotated[int, Strict()] | None = Field(
        None, alias="for", ge=1, description="Consecutive runs past the threshold before firing."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Monitor:
        for problem in (self._source_problem(), self._type_problem()):
            if problem:
                raise ValueError(problem)
        return self

    def _source_problem(self) -> str | None:
        if self.type == "eval":
            if self.gate is None:
                return "a monitor of type eval needs `gate: ${evals.NAME}`"
            return None
        if self.gate is not None:
            return "`gate` belongs to monitors of type eval"
        if (self.target is None) == (self.current is None):
            return "a monitor needs exactly one of `target` (live) or `current` (batch)"
        if self.type in LIVE_ONLY and self.target is None:
            return f"a {self.type} monitor reads the inference log: it needs `target`"
        return None

    def _type_problem(self) -> str | None:
        if self.type in DRIFT and self.reference is None:
            return f"a {self.type} monitor needs a `reference` dataset"
        if self.method is not None and self.type not in DRIFT:
            return f"`method` is a drift test: a {self.type} monitor has none"
        if self.min_labels is not None and self.type != "performance":
            return "`min_labels` belongs to performance monitors"
        return self._metric_problem()

    def _metric_problem(self) -> str | None:
        choices = METRIC_CHOICES.get(self.type)
        if choices is None:
            return None
        if self.metric is not None and self.metric not in choices:
            return (
                f"a {self.type} monitor's `metric` is one of {', '.join(choices)}, "
                f"not {self.metric!r}"
            )
        if self.slices is not None and self.type in LIVE_ONLY - FLOOR_TYPES:
            return (
                f"`slices` cuts performance by an input column; a {self.type} monitor is "
                "sliced by variant and version only"
            )
        metric = self.metric or choices[0]
        direction = "floor: it fires below" if self.type in FLOOR_TYPES else "ceiling: above"
        if self.threshold is None:
            return (
                f"a monitor of type {self.type} needs `threshold` (for {metric}, a {direction} it)"
            )
        if metric in SHARES and self.threshold > 1:
            return f"{metric} is a share from 0 to 1: `threshold` {self.threshold} is above 1"
        return None


KIND = Kind("monitors", Monitor, default_provider="monitor", order=70)
