"""``monitors``: drift, performance, latency, error-rate and cost watches."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from specs.base import Duration, OwnedResource, ref_field
from specs.kinds import Kind


class Monitor(OwnedResource):
    section: ClassVar[str] = "monitors"
    computed: ClassVar[tuple[str, ...]] = ("last_value", "status")

    target: str | None = Field(None, description="A rollout or endpoint (reads its inference log).")
    current: str | None = ref_field(None, kinds=("datasets",))
    type: Literal["data_drift", "prediction_drift", "performance", "latency", "error_rate", "cost"]
    reference: str | None = ref_field(None, kinds=("datasets",))
    features: list[str] = Field(default_factory=list)
    method: Literal["auto", "psi", "ks", "wasserstein", "chisquare", "jensenshannon"] = "auto"
    metric: str | None = None
    threshold: float | None = None
    window: Duration | None = None
    schedule: str | None = None
    alert: str | None = ref_field(None, kinds=("alerts",))

    @model_validator(mode="after")
    def _one_source(self) -> Monitor:
        if (self.target is None) == (self.current is None):
            raise ValueError("a monitor needs exactly one of `target` (live) or `current` (batch)")
        if self.type in ("data_drift", "prediction_drift") and self.reference is None:
            raise ValueError(f"a {self.type} monitor needs a `reference` dataset")
        return self


KIND = Kind("monitors", Monitor, default_provider="monitor", order=70)
