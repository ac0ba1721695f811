"""``evals``: release gates. ML gates judge metrics on a dataset; LLM gates run cases.

The exact definition of every metric and assertion is in ``docs/evals.md``;
the gate provider (``providers.gates``) implements them.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from specs.base import Resource, SpecModel, ref_field
from specs.kinds import Kind

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
#: Metrics where a smaller value is better: for these ``max_drop`` bounds a *rise*.
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "ece", "cost", "mae", "rmse"})
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


def _suggest(word: str, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, known, n=1)
    return f' (did you mean "{close[0]}"?)' if close else ""


class Threshold(SpecModel):
    """Bounds on one metric. ``max_drop``: how much worse than the baseline it may be.

    "Worse" follows the metric's direction: a fall for accuracy-like metrics, a
    rise for the losses and errors in ``LOWER_IS_BETTER``. Absolute units.
    """

    min: float | None = None
    max: float | None = None
    max_drop: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Threshold:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


def _known_metrics(value: dict[str, Threshold] | None) -> dict[str, Threshold] | None:
    for name in value or {}:
        if name not in ML_METRICS:
            raise ValueError(
                f"unknown metric {name!r}{_suggest(name, ML_METRICS)}; "
                f"known: {', '.join(ML_METRICS)}"
            )
    return value


class Slices(SpecModel):
    """One slice per distinct value of each ``by`` column (columns are sliced separately)."""

    by: list[str] = Field(..., min_length=1)
    min_rows: int = Field(30, ge=1, description="Smaller slices are reported, not judged.")
    metrics: dict[str, Threshold] | None = Field(
        None, description="Per-slice thresholds; default: the overall ones."
    )

    _check_metrics = field_validator("metrics")(_known_metrics)


class AliasBaseline(SpecModel):
    alias: str = Field(..., min_length=1)


class ModelBaseline(SpecModel):
    model: str = Field(..., description='Another model: "${models.x}".')


class HeuristicBaseline(SpecModel):
    """A model-free baseline fitted on the eval labels (scikit-learn's Dummy* estimators)."""

    heuristic: Literal["majority", "constant", "mean", "median", "prior"]
    value: float | str | None = Field(None, description="The constant of `constant`.")

    @model_validator(mode="after")
    def _constant_needs_value(self) -> HeuristicBaseline:
        if self.heuristic == "constant" and self.value is None:
            raise ValueError("heuristic `constant` needs `value` (the class or number to predict)")
        return self


Baseline = Literal["previous", "none"] | AliasBaseline | ModelBaseline | HeuristicBaseline


class CostMatrix(SpecModel):
    """Cost of each outcome of a binary decision (defaults: each error costs 1)."""

    fp: float = 1.0
    fn: float = 1.0
    tp: float = 0.0
    tn: float = 0.0


class Assertion(SpecModel):
    """One check of an LLM answer; ``not_<type>`` passes exactly when ``<type>`` fails."""

    type: AssertionType
    value: Any = None
    threshold: float | None = None
    weight: float = Field(1.0, ge=0)

    @model_validator(mode="after")
    def _value_fits_type(self) -> Assertion:
        base = self.type.removeprefix("not_")
        if base in ("equals", "contains", "icontains", "regex", "similar") and self.value is None:
            raise ValueError(f"`{base}` needs `value`")
        if base in ("latency_ms", "cost_usd") and self.value is None and self.threshold is None:
            raise ValueError(f"`{base}` needs `value` (the maximum)")
        if base == "json_schema" and not isinstance(self.value, dict):
            raise ValueError("`json_schema` needs `value`: a JSON Schema object")
        if base == "regex":
            try:
                re.compile(str(self.value))
            except re.error as exc:
                raise ValueError(f"invalid regex {self.value!r}: {exc}") from None
        bounded = base in ("similar", "grounded") and self.threshold is not None
        if bounded and not 0 <= self.threshold <= 1:  # type: ignore[operator]
            raise ValueError(f"`{base}` threshold must be between 0 and 1")
        return self


class PassRate(SpecModel):
    min: float = Field(..., ge=0, le=1)


class OpenAIClient(SpecModel):
    """An OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, Ollama, LiteLLM)."""

    type: Literal["openai"] = "openai"
    base_url: str = "https://api.openai.com/v1"
    model: str | None = Field(None, description="Used when the prompt names no model.")
    api_key: str | None = None
    params: dict[str, Any] = Field(
        default_factory=dict, description="Defaults under the prompt's own params."
    )
    timeout_s: float = Field(60, gt=0)
    backoff_s: float = Field(0.5, ge=0, description="First retry delay; doubles each retry.")
    embedding_model: str | None = Field(
        None, description="Use the endpoint's /embeddings for `similar` instead of the local one."
    )


class PythonClient(SpecModel):
    type: Literal["python"]
    python: str = Field(..., pattern=r"^[\w.]+:[\w.]+$", description="module:function")


class Price(SpecModel):
    input_per_1k: float = Field(0, ge=0)
    output_per_1k: float = Field(0, ge=0)
    cached_input_per_1k: float | None = Field(
        None,
        ge=0,
        description="Cached input tokens (cache reads), USD per 1k; default: input_per_1k.",
    )


class Eval(Resource):
    """A gate: whatever depends on it is applied only if it passes."""

    section: ClassVar[str] = "evals"
    #: ``result``: the one-line verdict; ``report``: the human text ``mlx show`` prints.
    computed: ClassVar[tuple[str, ...]] = ("passed", "result", "evidence", "report")
    is_gate: ClassVar[bool] = True
    plan_outputs: ClassVar[tuple[str, ...]] = ("passed",)

    subject: str = ref_field(..., kinds=("models", "prompts"))
    dataset: str | None = ref_field(None, kinds=("datasets",))
    label: str | None = None
    features: list[str] | None = None
    predictions: str | None = Field(
        None, description="A predictions file from the training pipeline instead of the model."
    )
    task: Literal["auto", "binary", "multiclass", "regression"] = "auto"
    positive_label: str | int | bool | None = Field(
        None, description="Positive class of a binary task; default 1 (or True, or the last)."
    )
    decision_threshold: float = Field(0.5, gt=0, lt=1)
    average: Literal["macro", "weighted", "micro"] = Field(
        "macro", description="How multiclass precision, recall and F1 average over classes."
    )
    baseline: Baseline = "previous"
    metrics: dict[str, Threshold] = Field(default_factory=dict)
    slices: Slices | None = None
    cost_matrix: CostMatrix | None = None
    # LLM gates
    cases: str | None = Field(None, description="YAML or JSONL file of cases.")
    assert_: list[Assertion] = Field(default_factory=list, alias="assert")
    pass_rate: PassRate | None = None
    # not a discriminated union: a normalized spec omits ``type: openai`` (it is the default)
    client: OpenAIClient | PythonClient | None = None
    pricing: dict[str, Price] = Field(default_factory=dict)
    concurrency: int = Field(8, ge=1, le=256)
    retries: int = Field(3, ge=0, le=10)
    cache: bool = Field(True, description="Reuse answers of unchanged cases (no new calls).")

    _check_metrics = field_validator("metrics")(_known_metrics)

    @property
    def is_llm(self) -> bool:
        return self.cases is not None

    @model_validator(mode="after")
    def _one_kind_of_gate(self) -> Eval:
        if self.dataset is None and self.cases is None and self.predictions is None:
            raise ValueError("a gate needs `dataset` (ML), `predictions` (ML) or `cases` (LLM)")
        if self.cases is not None and (self.dataset is not None or self.predictions is not None):
            raise ValueError(
                "`cases` (LLM gate) and `dataset`/`predictions` (ML gate) exclude each other"
            )
        if self.cases is None:
            if self.label is None:
                raise ValueError("an ML gate needs `label`: the dataset column holding the truth")
            if self.assert_ or self.pass_rate is not None:
                raise ValueError("`assert` and `pass_rate` belong to LLM gates (with `cases`)")
        elif self.metrics or self.slices is not None:
            raise ValueError("`metrics` and `slices` belong to ML gates; LLM gates use `assert`")
        return self


KIND = Kind("evals", Eval, default_provider="gate", order=40)
