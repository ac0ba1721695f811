"""``evals``: release gates. ML gates judge metrics on a dataset; LLM gates run cases."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, StringConstraints, model_validator

from specs.base import Resource, SpecModel, ref_field

ML_METRICS = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "pr_auc",
    "log_loss",
    "brier",
    "ece",
    "cost",
    "mae",
    "rmse",
    "r2",
)
ASSERTION_TYPES = (
    "equals",
    "contains",
    "icontains",
    "regex",
    "is_json",
    "json_schema",
    "similar",
    "grounded",
    "refuses",
    "latency_ms",
    "cost_usd",
)
AssertionType = Annotated[
    str, StringConstraints(pattern=r"^(not_)?(" + "|".join(ASSERTION_TYPES) + r")$")
]


class Threshold(SpecModel):
    """Bounds on one metric. ``max_drop``: how much worse than the baseline it may be."""

    min: float | None = None
    max: float | None = None
    max_drop: float | None = Field(None, ge=0)


class Slices(SpecModel):
    by: list[str] = Field(..., min_length=1)
    min_rows: int = Field(30, ge=1)
    metrics: dict[str, Threshold] | None = Field(
        None, description="Per-slice thresholds; default: the overall min/max."
    )


class AliasBaseline(SpecModel):
    alias: str


class ModelBaseline(SpecModel):
    model: str


class HeuristicBaseline(SpecModel):
    heuristic: Literal["majority", "constant", "mean", "median", "prior"]
    value: float | None = None


Baseline = Literal["previous", "none"] | AliasBaseline | ModelBaseline | HeuristicBaseline


class CostMatrix(SpecModel):
    """Cost of each outcome of a binary decision (defaults: errors cost 1)."""

    fp: float = 1.0
    fn: float = 1.0
    tp: float = 0.0
    tn: float = 0.0


class Assertion(SpecModel):
    type: AssertionType
    value: Any = None
    threshold: float | None = None
    weight: float = Field(1.0, ge=0)


class PassRate(SpecModel):
    min: float = Field(..., ge=0, le=1)


class OpenAIClient(SpecModel):
    type: Literal["openai"] = "openai"
    base_url: str = "https://api.openai.com/v1"
    model: str | None = None
    api_key: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    timeout_s: float = Field(60, gt=0)


class PythonClient(SpecModel):
    type: Literal["python"]
    python: str = Field(..., pattern=r"^[\w.]+:[\w.]+$", description="module:function")


class Price(SpecModel):
    input_per_1k: float = Field(0, ge=0)
    output_per_1k: float = Field(0, ge=0)


class Eval(Resource):
    """A gate: whatever depends on it is applied only if it passes."""

    section: ClassVar[str] = "evals"
    computed: ClassVar[tuple[str, ...]] = ("passed", "result", "evidence")

    subject: str = ref_field(..., kinds=("models", "prompts"))
    dataset: str | None = ref_field(None, kinds=("datasets",))
    label: str | None = None
    features: list[str] | None = None
    predictions: str | None = Field(
        None, description="A predictions file from the training pipeline instead of the model."
    )
    decision_threshold: float = Field(0.5, gt=0, lt=1)
    baseline: Baseline = "previous"
    metrics: dict[str, Threshold] = Field(default_factory=dict)
    slices: Slices | None = None
    cost_matrix: CostMatrix | None = None
    # LLM gates
    cases: str | None = Field(None, description="YAML or JSONL file of cases.")
    assert_: list[Assertion] = Field(default_factory=list, alias="assert")
    pass_rate: PassRate | None = None
    client: Annotated[OpenAIClient | PythonClient, Field(discriminator="type")] | None = None
    pricing: dict[str, Price] = Field(default_factory=dict)
    concurrency: int = Field(8, ge=1, le=256)
    retries: int = Field(3, ge=0, le=10)

    @model_validator(mode="after")
    def _one_kind_of_gate(self) -> Eval:
        if self.dataset is None and self.cases is None and self.predictions is None:
            raise ValueError("a gate needs `dataset` (ML), `predictions` (ML) or `cases` (LLM)")
        if self.cases is not None and self.dataset is not None:
            raise ValueError("`cases` (LLM gate) and `dataset` (ML gate) exclude each other")
        return self
